// The writer's own contract: exact sizes, views instead of copies, backpressure, and validation that fails before
// the first byte. (What Faiss thinks of the bytes is in faiss-compat.test.ts.)
import { Writable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { FaissFormatError } from '../../src/faiss-format/errors.js';
import type { FaissFormat } from '../../src/faiss-format/formats.js';
import { defaultAssignProbas, defaultCumNeighborPerLevel } from '../../src/faiss-format/hnsw-defaults.js';
import type { HnswGraph } from '../../src/faiss-format/hnsw-graph.js';
import type { FaissIndexInput } from '../../src/faiss-format/validate.js';
import {
  faissIndexChunks,
  faissIndexReadable,
  faissIndexSections,
  faissIndexSize,
  writeFaissIndex,
} from '../../src/faiss-format/writer.js';
import type { VectorSet } from '../../src/vectors/types.js';
import { baseLevelGraph, indexInput, testData, twoLevelGraph, unlessPython } from '../helpers/faiss-files.js';
import { FAISS_115_PYTHON, REPO_ROOT, faissPythonAvailable, runPythonJson } from '../helpers/python.js';

const concat = (chunks: Iterable<Uint8Array>) => Buffer.concat(Array.from(chunks, (c) => Buffer.from(c)));

/** The FAISS_FORMAT.md worked example: n = 3000, d = 32, M = 16, L2, every node on level 1. */
function workedExample(format: FaissFormat, entryPoint: number): FaissIndexInput {
  const n = 3000;
  const d = 32;
  const vectors: VectorSet = { dataType: 'float', dimension: d, count: n, chunks: [new Float32Array(n * d)] };
  const graph: HnswGraph = {
    M: 16,
    neighbors: new Int32Array(n * 32).fill(-1),
    entryPoint,
    maxLevel: entryPoint === -1 ? -1 : 0,
  };
  const ids = Int32Array.from({ length: n }, (_, i) => i);
  return { format, graph, vectors, ids, spaceType: 'l2', efConstruction: 100, efSearch: 100 };
}

describe('sizes', () => {
  it("match FAISS_FORMAT.md's worked example (IHNf 828,295 bytes; IHNc +6; IHc2 +10)", () => {
    expect(faissIndexSize(workedExample({ index: 'IHNf', storage: 'flat' }, 0))).toBe(828_295);
    expect(faissIndexSize(workedExample({ index: 'IHNc', storage: 'flat' }, -1))).toBe(828_301);
    expect(faissIndexSize(workedExample({ index: 'IHc2', storage: 'flat' }, -1))).toBe(828_305);
  });

  it('are exactly what the generator yields, for every layout and piece size', () => {
    const cases: [ReturnType<typeof testData>, HnswGraph, FaissFormat][] = [];
    const f = testData('float', 50, 8);
    const h = testData('half_float', 50, 8);
    const b = testData('byte', 50, 8);
    const x = testData('binary', 50, 32);
    cases.push([f, twoLevelGraph(f, 4), { index: 'IHNf', storage: 'flat' }]);
    cases.push([f, baseLevelGraph(f, 4), { index: 'IHNc', storage: 'none' }]);
    cases.push([h, baseLevelGraph(h, 4), { index: 'IHc2', storage: 'sq-fp16' }]);
    cases.push([b, twoLevelGraph(b, 4), { index: 'IHNs', storage: 'sq-int8' }]);
    cases.push([x, baseLevelGraph(x, 4), { index: 'IBHc', storage: 'binary-flat' }]);
    for (const [data, graph, format] of cases) {
      const input = indexInput(data, graph, format);
      const size = faissIndexSize(input);
      const whole = concat(faissIndexChunks(input));
      expect(whole.length).toBe(size);
      expect(faissIndexSections(input).reduce((sum, s) => sum + s.bytes, 0)).toBe(size);
      for (const piece of [8, 64, 1000]) {
        const chunks = Array.from(faissIndexChunks(input, { pieceBytes: piece }));
        expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(Math.max(piece, 200));
        expect(concat(chunks).equals(whole)).toBe(true);
      }
    }
  });
});

describe('streaming', () => {
  const data = testData('float', 200, 16);
  const graph = baseLevelGraph(data, 8);
  const input = indexInput(data, graph, { index: 'IHNc', storage: 'flat' });

  it('yields the neighbor array and the vectors as views over their own memory', () => {
    const chunks = Array.from(faissIndexChunks(input, { pieceBytes: 1024 }));
    expect(chunks.some((c) => c.buffer === graph.neighbors.buffer)).toBe(true);
    expect(chunks.some((c) => c.buffer === data.vectors.chunks[0]!.buffer)).toBe(true);
  });

  it('waits for drain when the sink pushes back, and resolves with the bytes written', async () => {
    const received: Buffer[] = [];
    let refusals = 0;
    let maxBuffered = 0;
    const sink = new Writable({
      highWaterMark: 512,
      write(chunk: Buffer, _enc, done) {
        received.push(Buffer.from(chunk));
        setImmediate(done);
      },
    });
    const write = sink.write.bind(sink);
    sink.write = ((chunk: Uint8Array) => {
      const ok = write(chunk);
      if (!ok) refusals++;
      maxBuffered = Math.max(maxBuffered, sink.writableLength);
      return ok;
    }) as typeof sink.write;
    const bytes = await writeFaissIndex(input, sink, { pieceBytes: 256 });
    expect(bytes).toBe(faissIndexSize(input));
    expect(Buffer.concat(received).equals(concat(faissIndexChunks(input)))).toBe(true);
    expect(refusals).toBeGreaterThan(10);
    expect(maxBuffered).toBeLessThanOrEqual(512 + 256);
    expect(sink.writableFinished).toBe(true);
  });

  it('rejects with the sink error when the sink fails midway', async () => {
    let seen = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        seen += chunk.length;
        done(seen > 4000 ? new Error('disk full') : null);
      },
    });
    await expect(writeFaissIndex(input, sink, { pieceBytes: 1024 })).rejects.toThrow('disk full');
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    const sink = new Writable({
      highWaterMark: 64,
      write(_chunk, _enc, done) {
        controller.abort(new Error('job cancelled'));
        setImmediate(done);
      },
    });
    await expect(
      writeFaissIndex(input, sink, { signal: controller.signal, pieceBytes: 256 }),
    ).rejects.toThrow('job cancelled');
  });

  it('rejects with words a person reads when the sink is closed midway', async () => {
    let seen = 0;
    const sink: Writable = new Writable({
      write(chunk: Buffer, _enc, done) {
        seen += chunk.length;
        if (seen > 4000) sink.destroy();
        done();
      },
    });
    await expect(writeFaissIndex(input, sink, { pieceBytes: 1024 })).rejects.toThrow(
      'the sink closed before the Faiss index was completely written',
    );
  });

  it('leaves the sink open with end: false, every byte written', async () => {
    const received: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        received.push(Buffer.from(chunk));
        done();
      },
    });
    const bytes = await writeFaissIndex(input, sink, { pieceBytes: 4096, end: false });
    expect(bytes).toBe(faissIndexSize(input));
    expect(sink.writableEnded).toBe(false);
    expect(Buffer.concat(received).equals(concat(faissIndexChunks(input)))).toBe(true);
  });

  it('is also a Readable for an upload body', async () => {
    const parts: Buffer[] = [];
    for await (const part of faissIndexReadable(input, { pieceBytes: 4096 })) parts.push(part as Buffer);
    expect(Buffer.concat(parts).equals(concat(faissIndexChunks(input)))).toBe(true);
  });
});

describe('validation before the first byte', () => {
  const data = testData('float', 40, 8);
  const two = twoLevelGraph(data, 4);
  const base = baseLevelGraph(data, 4);
  const ihnf: FaissFormat = { index: 'IHNf', storage: 'flat' };
  const ihnc: FaissFormat = { index: 'IHNc', storage: 'flat' };

  function rejects(input: FaissIndexInput, code: string, message: RegExp): void {
    const chunks = faissIndexChunks(input);
    try {
      chunks.next();
    } catch (e) {
      expect(e).toBeInstanceOf(FaissFormatError);
      expect((e as FaissFormatError).code).toBe(code);
      expect((e as Error).message).toMatch(message);
      return;
    }
    throw new Error('expected the first chunk to throw');
  }

  const withNeighbor = (g: HnswGraph, at: number, value: number): HnswGraph => {
    const neighbors = g.neighbors.slice();
    neighbors[at] = value;
    return { ...g, neighbors };
  };

  it('rejects neighbour ids outside [-1, n), naming node and level', () => {
    rejects(
      indexInput(data, withNeighbor(base, 4 * 8 + 2, 40), ihnc),
      'NEIGHBOR_OUT_OF_RANGE',
      /neighbors\[34\] = 40 \(node 4, level 0\) is outside \[-1, 40\)/,
    );
    rejects(indexInput(data, withNeighbor(base, 0, -2), ihnc), 'NEIGHBOR_OUT_OF_RANGE', /= -2/);
    // Node 0 is on level 1: its level-1 links follow its 8 level-0 slots.
    rejects(indexInput(data, withNeighbor(two, 9, 99), ihnf), 'NEIGHBOR_OUT_OF_RANGE', /node 0, level 1/);
  });

  it('rejects a valid link after -1 padding (search would never see it)', () => {
    rejects(
      indexInput(data, withNeighbor(base, 16 + 3, -1), ihnc),
      'BAD_INPUT',
      /node 2 level 0: link \d+ at neighbors\[20\] follows a -1/,
    );
  });

  it('requires an entry point for IHNf/IHNs/IBHf and a consistent max_level', () => {
    rejects(indexInput(data, base, ihnf), 'BAD_INPUT', /IHNf needs a real entry point/);
    rejects(
      indexInput(data, { ...two, entryPoint: 3 }, ihnf),
      'BAD_INPUT',
      /entry_point 3 reaches level 0 but the graph's top level is 1/,
    );
    rejects(
      indexInput(data, { ...two, maxLevel: 0 }, ihnf),
      'BAD_INPUT',
      /max_level must be levels\[entry_point\] - 1 = 1, got 0/,
    );
    rejects(
      indexInput(data, { ...two, entryPoint: -1, maxLevel: -1 }, ihnc),
      'BAD_INPUT',
      /upper levels but entry_point is -1/,
    );
  });

  it('checks levels, the neighbor count and the level tables', () => {
    const levels = two.levels!.slice();
    levels[5] = 99;
    rejects(
      indexInput(data, { ...two, levels }, ihnf),
      'BAD_INPUT',
      /levels\[5\] = 99: a node's level \+ 1 must be in \[1, \d+\]/,
    );
    rejects(
      indexInput(data, { ...base, neighbors: base.neighbors.subarray(1) }, ihnc),
      'BAD_INPUT',
      /neighbors holds 319 slots but the levels need 320/,
    );
    rejects(
      indexInput(data, { ...base, cumNeighborPerLevel: Int32Array.of(0, 8, 4) }, ihnc),
      'BAD_INPUT',
      /decreases at 2/,
    );
  });

  it('checks ids and vectors against each other', () => {
    rejects(
      { ...indexInput(data, base, ihnc), ids: data.ids.subarray(1) },
      'BAD_INPUT',
      /39 ids for 40 vectors/,
    );
    const ids = data.ids.slice();
    ids[7] = ids[6]!;
    rejects({ ...indexInput(data, base, ihnc), ids }, 'BAD_INPUT', /position 7 holds \d+ after \d+/);
    const vectors = { ...data.vectors, chunks: [data.vectors.chunks[0]!.subarray(8)] };
    rejects(
      { ...indexInput(data, base, ihnc), vectors },
      'BAD_INPUT',
      /chunks hold 39 vectors, the set says 40/,
    );
    const halfBits = { ...data.vectors, chunks: [new Uint16Array(40 * 8)] };
    rejects(
      { ...indexInput(data, base, ihnc), vectors: halfBits },
      'BAD_INPUT',
      /float vectors come as Float32Array; chunk 0 is a Uint16Array/,
    );
  });

  it('refuses layouts that do not fit the data', () => {
    rejects(
      indexInput(data, two, { index: 'IHNs', storage: 'sq-fp16' }),
      'UNSUPPORTED',
      /float vectors go into IHNf or IHNc or IHc2, not IHNs/,
    );
    rejects(
      indexInput(data, two, { index: 'IHNf', storage: 'sq-fp16' }),
      'UNSUPPORTED',
      /IHNf cannot hold 'sq-fp16'/,
    );
    const bytes = testData('byte', 40, 8);
    rejects(
      indexInput(bytes, baseLevelGraph(bytes, 4), { index: 'IHc2', storage: 'sq-int8' }),
      'UNSUPPORTED',
      /byte vectors go into IHNs, not IHc2/,
    );
    rejects(
      { ...indexInput(data, two, ihnf), spaceType: 'hamming' },
      'UNSUPPORTED',
      /space_type hamming does not apply to float/,
    );
  });
});

describe.skipIf(!faissPythonAvailable())(
  `default level tables are Faiss's${unlessPython(faissPythonAvailable(), FAISS_115_PYTHON)}`,
  () => {
    it('bit for bit for M = 2..64, 96, 128', async () => {
      const ms = [...Array.from({ length: 63 }, (_, i) => i + 2), 96, 128];
      type Tables = Record<string, { assign_probas: number[]; cum_nneighbor_per_level: number[] }>;
      const faiss = await runPythonJson<Tables>(FAISS_115_PYTHON, `${REPO_ROOT}/test/python/faiss_check.py`, [
        'hnsw-defaults',
        ...ms.map(String),
      ]);
      for (const m of ms) {
        expect(Array.from(defaultAssignProbas(m)), `assign_probas for M=${m}`).toEqual(
          faiss[m]!.assign_probas,
        );
        expect(Array.from(defaultCumNeighborPerLevel(m)), `cum for M=${m}`).toEqual(
          faiss[m]!.cum_nneighbor_per_level,
        );
      }
    });
  },
);
