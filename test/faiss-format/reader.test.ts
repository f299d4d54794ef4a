// Our reader reads back everything the writer produces, and rejects damaged files with a message that says what
// is wrong and where.
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { FaissFormatError } from '../../src/faiss-format/errors.js';
import type { FaissFormat } from '../../src/faiss-format/formats.js';
import type { HnswGraph } from '../../src/faiss-format/hnsw-graph.js';
import { readFaissIndex, readFaissIndexFile } from '../../src/faiss-format/reader.js';
import type { FaissIndexInput } from '../../src/faiss-format/validate.js';
import { faissIndexChunks, faissIndexSections } from '../../src/faiss-format/writer.js';
import { baseLevelGraph, indexInput, tempDir, testData, twoLevelGraph } from '../helpers/faiss-files.js';

const bytesOf = (input: FaissIndexInput) =>
  new Uint8Array(Buffer.concat(Array.from(faissIndexChunks(input), (c) => Buffer.from(c))));

const sectionAt = (input: FaissIndexInput, name: string) =>
  faissIndexSections(input).find((s) => s.name === name)!;

describe('reading our files back', () => {
  const cases: { name: string; data: ReturnType<typeof testData>; graph: HnswGraph; format: FaissFormat }[] =
    [];
  const f = testData('float', 120, 8, 1);
  const ip = testData('float', 120, 8, 1, 'innerproduct');
  const h = testData('half_float', 120, 8, 2);
  const b = testData('byte', 120, 8, 3);
  const x = testData('binary', 120, 64, 4);
  cases.push({
    name: 'IHNf',
    data: f,
    graph: twoLevelGraph(f, 4),
    format: { index: 'IHNf', storage: 'flat' },
  });
  cases.push({
    name: 'IHNf ip',
    data: ip,
    graph: twoLevelGraph(ip, 4),
    format: { index: 'IHNf', storage: 'flat' },
  });
  cases.push({
    name: 'IHNc null',
    data: f,
    graph: baseLevelGraph(f, 4),
    format: { index: 'IHNc', storage: 'none' },
  });
  cases.push({
    name: 'IHc2 fp16',
    data: h,
    graph: baseLevelGraph(h, 4),
    format: { index: 'IHc2', storage: 'sq-fp16' },
  });
  cases.push({
    name: 'IHNs int8',
    data: b,
    graph: twoLevelGraph(b, 4),
    format: { index: 'IHNs', storage: 'sq-int8' },
  });
  cases.push({
    name: 'IBHf',
    data: x,
    graph: twoLevelGraph(x, 4),
    format: { index: 'IBHf', storage: 'binary-flat' },
  });
  cases.push({
    name: 'IBHc',
    data: x,
    graph: baseLevelGraph(x, 4),
    format: { index: 'IBHc', storage: 'binary-flat' },
  });

  for (const { name, data, graph, format } of cases) {
    it(`reads ${name}: structure, key fields, sections and arrays`, () => {
      const input = indexInput(data, graph, format);
      const bytes = bytesOf(input);
      const s = readFaissIndex(bytes, { arrays: true, windowBytes: 256 });
      const binary = data.vectors.dataType === 'binary';
      expect(s).toMatchObject({
        fileBytes: bytes.length,
        trailingBytes: 0,
        idMap: binary ? 'IBMp' : 'IxMp',
        index: format.index,
        dimension: data.vectors.dimension,
        ntotal: 120,
        metric: data.spaceType,
        metricType: data.spaceType === 'innerproduct' ? 0 : 1,
        ids: { count: 120, first: data.ids[0], last: data.ids[119] },
      });
      expect(s.hnsw).toMatchObject({
        M: 4,
        entryPoint: graph.entryPoint,
        maxLevel: graph.maxLevel,
        efConstruction: 40,
        efSearch: 64,
        nodesPerLevel: graph.levels ? [108, 12] : [120],
        neighborSlots: graph.neighbors.length,
        baseDegree: { min: 8, max: 8, mean: 8 },
      });
      expect(s.sections).toEqual(faissIndexSections(input));
      expect(Array.from(s.arrays!.neighbors)).toEqual(Array.from(graph.neighbors));
      expect(Array.from(s.arrays!.levels)).toEqual(
        graph.levels ? Array.from(graph.levels) : new Array(120).fill(1),
      );
      expect(Array.from(s.arrays!.ids)).toEqual(Array.from(data.ids));
      if (format.storage === 'none') {
        expect(s.storage).toBe('null');
        expect(s.vectors).toBeUndefined();
        return;
      }
      const stored = data.vectors.chunks[0]!;
      const raw = new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
      const expected = format.storage === 'sq-int8' ? raw.map((v) => v ^ 0x80) : raw; // value + 128
      expect(Buffer.from(s.arrays!.codes!).equals(Buffer.from(expected))).toBe(true);
      if (format.index === 'IBHc' || format.index === 'IHc2') expect(s.cagra?.baseLevelOnly).toBe(true);
    });
  }

  it('reads from a Buffer, whose sections sit at unaligned offsets', () => {
    const input = indexInput(f, twoLevelGraph(f, 4), { index: 'IHNf', storage: 'flat' });
    const buffer = Buffer.concat([Buffer.alloc(1), Buffer.from(bytesOf(input))]).subarray(1);
    const s = readFaissIndex(buffer, { arrays: true, windowBytes: 96 });
    expect(Array.from(s.arrays!.neighbors)).toEqual(Array.from(input.graph.neighbors));
    expect(Array.from(s.arrays!.ids)).toEqual(Array.from(f.ids));
  });

  it('reads a file from disk in windows, without the arrays', () => {
    const tmp = tempDir('reader-');
    try {
      const input = indexInput(f, twoLevelGraph(f, 4), { index: 'IHNf', storage: 'flat' });
      const file = path.join(tmp.dir, 'i.faiss');
      writeFileSync(file, bytesOf(input));
      const s = readFaissIndexFile(file, { windowBytes: 100 });
      expect(s.arrays).toBeUndefined();
      expect(s.hnsw.linksPerLevel).toEqual([120 * 8, 12 * 4]);
      expect(s.storage).toBe('IxF2');
      expect(s.vectors).toEqual({ codeSize: 32, bytes: 120 * 32 });
    } finally {
      tmp.remove();
    }
  });
});

describe('rejecting damaged files', () => {
  const data = testData('float', 60, 8, 9);
  const input = indexInput(data, twoLevelGraph(data, 4), { index: 'IHNf', storage: 'flat' });
  const good = bytesOf(input);

  function rejects(bytes: Uint8Array, code: string, message: RegExp): void {
    try {
      readFaissIndex(bytes);
    } catch (e) {
      expect(e).toBeInstanceOf(FaissFormatError);
      expect((e as FaissFormatError).code).toBe(code);
      expect((e as Error).message).toMatch(message);
      return;
    }
    throw new Error('expected the reader to reject the file');
  }

  const patched = (at: number, write: (view: DataView) => void) => {
    const copy = good.slice();
    write(new DataView(copy.buffer, at));
    return copy;
  };

  it('a truncated file, wherever it is cut', () => {
    rejects(
      good.subarray(0, 12),
      'TRUNCATED',
      /file truncated: IxMp ntotal at byte 8 needs 8 bytes but the file ends 4 bytes later \(file size 12\)/,
    );
    const neighbors = sectionAt(input, 'hnsw.neighbors');
    rejects(
      good.subarray(0, neighbors.offset + 100),
      'TRUNCATED',
      /file truncated: hnsw.neighbors at byte \d+ needs \d+ bytes/,
    );
    rejects(
      good.subarray(0, good.length - 1),
      'TRUNCATED',
      /the id map at byte \d+ needs 480 bytes but only 479 remain/,
    );
  });

  it('a wrong count', () => {
    const levels = sectionAt(input, 'hnsw.levels');
    rejects(
      patched(levels.offset, (v) => v.setBigUint64(0, 59n, true)),
      'COUNT_MISMATCH',
      /hnsw.levels at byte \d+ holds 59 elements but the index holds ntotal = 60 vectors/,
    );
    const ids = sectionAt(input, 'id_map');
    rejects(
      patched(ids.offset, (v) => v.setBigUint64(0, 61n, true)),
      'COUNT_MISMATCH',
      /the id map at byte \d+ holds 61 elements/,
    );
    // The storage disagrees with the HNSW header about ntotal.
    const storage = sectionAt(input, 'storage IxF2');
    rejects(
      patched(storage.offset + 8, (v) => v.setBigInt64(0, 59n, true)),
      'COUNT_MISMATCH',
      /IHNf says d 8, ntotal 60, metric 1 but the IxF2 inside it says d 8, ntotal 59/,
    );
  });

  it('a neighbour out of range', () => {
    const neighbors = sectionAt(input, 'hnsw.neighbors');
    const at = neighbors.offset + 8 + 4 * 13; // node 1 (level 0 only... node 0 has 8 + 4 slots), its 2nd slot
    rejects(
      patched(at, (v) => v.setInt32(0, 60, true)),
      'NEIGHBOR_OUT_OF_RANGE',
      /hnsw.neighbors\[13\] = 60 \(node 1, level 0\) is outside \[-1, 60\)/,
    );
    rejects(
      patched(at, (v) => v.setInt32(0, -7, true)),
      'NEIGHBOR_OUT_OF_RANGE',
      /= -7/,
    );
  });

  it('offsets that do not follow the levels', () => {
    const offsets = sectionAt(input, 'hnsw.offsets');
    rejects(
      patched(offsets.offset + 8 + 8 * 2, (v) => v.setBigUint64(0, 21n, true)),
      'BAD_FIELD',
      /hnsw.offsets\[2\] is 21, expected offsets\[1\] \(12\) \+ cum_nneighbor_per_level\[1\] \(8\) = 20/,
    );
  });

  it('bad bools, fourccs, entry points and ids', () => {
    rejects(
      patched(32, (v) => v.setUint8(0, 2)),
      'BAD_FIELD',
      /IxMp is_trained at byte 32 is 2; a bool must be 0 or 1/,
    );
    rejects(
      patched(0, (v) => v.setUint32(0, 0x31434449, true)),
      'BAD_FOURCC',
      /starts with 'IDC1', expected 'IxMp' or 'IBMp'/,
    );
    const tail = sectionAt(input, 'hnsw.tail');
    rejects(
      patched(tail.offset, (v) => v.setInt32(0, 5, true)),
      'BAD_FIELD',
      /max_level is 1, entry_point 5 reaches level 0/,
    );
    rejects(
      patched(tail.offset, (v) => v.setInt32(0, -1, true)),
      'BAD_FIELD',
      /no entry point but max_level 1/,
    );
    const ids = sectionAt(input, 'id_map');
    rejects(
      patched(ids.offset + 8 + 8 * 3, (v) => v.setBigInt64(0, 0n, true)),
      'BAD_FIELD',
      /id_map must be strictly increasing: id_map\[3\] = 0 after \d+/,
    );
  });

  it('reports trailing bytes instead of failing (Faiss ignores them)', () => {
    const longer = new Uint8Array(good.length + 16);
    longer.set(good);
    expect(readFaissIndex(longer).trailingBytes).toBe(16);
  });
});
