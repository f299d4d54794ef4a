// splitAroundStoredVectors: the file cut around its stored vectors, for a store to copy them from the `.knnvec`
// (or, converted, to be sent while the graph builds). before + the middle + after must be exactly the file
// faissIndexChunks writes.
import { describe, expect, it } from 'vitest';

import type { FaissFormat } from '../../src/faiss-format/formats.js';
import {
  faissIndexChunks,
  splitAroundStoredVectors,
  storedVectorBytes,
} from '../../src/faiss-format/writer.js';
import type { DataType } from '../../src/vectors/types.js';
import { baseLevelGraph, indexInput, testData, twoLevelGraph } from '../helpers/faiss-files.js';

const concat = (chunks: Iterable<Uint8Array>) => Buffer.concat(Array.from(chunks, (c) => Buffer.from(c)));

describe('splitAroundStoredVectors', () => {
  const kept: [string, DataType, number, FaissFormat, boolean][] = [
    ['float IHNf/flat, two levels', 'float', 24, { index: 'IHNf', storage: 'flat' }, true],
    ['float IHNc/flat, base level', 'float', 24, { index: 'IHNc', storage: 'flat' }, false],
    ['binary IBHf/binary-flat', 'binary', 64, { index: 'IBHf', storage: 'binary-flat' }, true],
  ];
  it.each(kept)('%s: before + the .knnvec bytes + after = the file', (_name, type, d, format, twoLevels) => {
    const data = testData(type, 300, d);
    const graph = twoLevels ? twoLevelGraph(data, 8) : baseLevelGraph(data, 8);
    const input = indexInput(data, graph, format);
    const split = splitAroundStoredVectors(input, { pieceBytes: 4096 })!;
    expect(split).toBeDefined();
    const vectorBytes = concat(
      data.vectors.chunks.map((c) => new Uint8Array(c.buffer, c.byteOffset, c.byteLength)),
    );
    const before = concat(split.before);
    const after = concat(split.after);
    expect(before.length).toBe(split.beforeBytes);
    expect(after.length).toBe(split.afterBytes);
    expect(split.vectorBytes).toBe(vectorBytes.length);
    expect(Buffer.concat([before, vectorBytes, after]).equals(concat(faissIndexChunks(input)))).toBe(true);
  });

  const converted: [string, DataType, FaissFormat][] = [
    ['half_float (fp16 storage)', 'half_float', { index: 'IHNs', storage: 'sq-fp16' }],
    ['byte (int8 codes)', 'byte', { index: 'IHNs', storage: 'sq-int8' }],
    ['no stored vectors', 'float', { index: 'IHc2', storage: 'none' }],
  ];
  it.each(converted)('%s: nothing to copy (undefined)', (_name, type, format) => {
    const data = testData(type, 100, 16);
    expect(splitAroundStoredVectors(indexInput(data, twoLevelGraph(data, 8), format))).toBeUndefined();
  });

  // Ours (from 'memory'): sent while the graph builds, the int8 codes encoded by storedVectorBytes.
  it.each(converted.slice(0, 2))(
    '%s: before + storedVectorBytes + after = the file (from memory)',
    (_name, type, format) => {
      const data = testData(type, 300, 16);
      const input = indexInput(data, twoLevelGraph(data, 8), format);
      const split = splitAroundStoredVectors(input, { pieceBytes: 4096, from: 'memory' })!;
      const middle = concat(storedVectorBytes(data.vectors, format.storage));
      expect(split.vectorBytes).toBe(middle.length);
      const whole = Buffer.concat([concat(split.before), middle, concat(split.after)]);
      expect(whole.equals(concat(faissIndexChunks(input)))).toBe(true);
    },
  );

  it('no stored vectors: nothing to send either', () => {
    const data = testData('float', 100, 16);
    const input = indexInput(data, twoLevelGraph(data, 8), { index: 'IHc2', storage: 'none' });
    expect(splitAroundStoredVectors(input, { from: 'memory' })).toBeUndefined();
  });
});
