// The CPU builder end to end through the native addon: every data type and space, graph structure, recall of
// the graph itself (searched like Faiss does, ef 100), progress, and the validation that guards the addon.
import { describe, expect, it } from 'vitest';

import { BuildInputError, CpuBuilder } from '../../src/builders/cpu.js';
import { centralNode } from '../../src/builders/entry-node.js';
import type { BuildParams, BuiltGraph } from '../../src/builders/types.js';
import type { VectorSet } from '../../src/vectors/types.js';
import { assertValidGraph, reachableFraction, searchGraph } from '../helpers/graph-check.js';
import {
  asStored,
  clusteredBinary,
  clusteredFloat,
  distanceFunction,
  exactKnn,
  normalizeRows,
  recallAtK,
  splitRows,
  type VectorTable,
} from '../helpers/synthetic.js';

const N = 4000;
const QUERIES = 200;
const D = 32;
const PARAMS: BuildParams = {
  spaceType: 'l2',
  m: 16,
  efConstruction: 100,
  efSearch: 100,
  hierarchical: true,
};
const builder = new CpuBuilder({ threads: 2 });

interface Case {
  vectors: VectorSet;
  /** What the index holds (floats for every float type, bits for binary) and the queries, for recall. */
  base: VectorTable;
  queries: VectorTable;
}

function floatCase(space: 'l2' | 'innerproduct', dataType: 'float' | 'half_float' | 'byte'): Case {
  let all = clusteredFloat({ count: N + QUERIES, dimension: D, seed: 7 });
  if (space === 'innerproduct') all = normalizeRows(all, D);
  // Recall is measured on what the index holds: the exact float values of fp16 / int8 vectors.
  const { stored, held } = asStored(all, dataType);
  const [chunk] = splitRows(stored, D, N);
  const [base, queries] = splitRows(held, D, N);
  return {
    vectors: { dataType, dimension: D, count: N, chunks: [chunk] },
    base: { metric: space, dimension: D, data: base },
    queries: { metric: space, dimension: D, data: queries },
  };
}

function binaryCase(bits: number): Case {
  const all = clusteredBinary({ count: N + QUERIES, dimension: bits, seed: 11 });
  const [base, queries] = splitRows(all, bits / 8, N);
  return {
    vectors: { dataType: 'binary', dimension: bits, count: N, chunks: [base] },
    base: { metric: 'hamming', dimension: bits, data: base },
    queries: { metric: 'hamming', dimension: bits, data: queries },
  };
}

function graphRecall(c: Case, built: BuiltGraph, entryPoints?: number[]): number {
  const dist = distanceFunction(c.base, c.queries);
  const found = Array.from({ length: QUERIES }, (_, q) =>
    searchGraph(built.graph, N, (id) => dist(q, id), 10, 100, entryPoints),
  );
  return recallAtK(c.base, c.queries, found, exactKnn(c.base, c.queries, 10));
}

describe('CpuBuilder', () => {
  const cases: [string, () => Case, BuildParams['spaceType']][] = [
    ['float, l2', () => floatCase('l2', 'float'), 'l2'],
    ['float, inner product', () => floatCase('innerproduct', 'float'), 'innerproduct'],
    ['half_float, l2', () => floatCase('l2', 'half_float'), 'l2'],
    ['half_float, inner product', () => floatCase('innerproduct', 'half_float'), 'innerproduct'],
    ['byte, l2', () => floatCase('l2', 'byte'), 'l2'],
    ['byte, inner product', () => floatCase('innerproduct', 'byte'), 'innerproduct'],
    ['binary 256 bits, hamming', () => binaryCase(256), 'hamming'],
    ['binary 24 bits (odd code size), hamming', () => binaryCase(24), 'hamming'],
  ];

  it.each(cases)('builds a valid Faiss HNSW with recall@10 >= 0.95 (%s)', async (_name, make, spaceType) => {
    const c = make();
    const built = await builder.build(c.vectors, { ...PARAMS, spaceType });
    const g = built.graph;
    expect(g.M).toBe(16);
    expect(g.levels).toHaveLength(N);
    expect(g.maxLevel).toBeGreaterThan(0);
    assertValidGraph(g, N);
    expect(reachableFraction(g, N)).toBeGreaterThan(0.999);
    const recall = graphRecall(c, built);
    // 24-bit codes have so few distinct distances that ties, not the graph, bound recall.
    expect(recall).toBeGreaterThanOrEqual(spaceType === 'hamming' && c.base.dimension < 64 ? 0.9 : 0.95);
    expect(built.stageSeconds.build).toBeGreaterThan(0);
  });

  it('returns Faiss default level probabilities and cumulative link counts', async () => {
    const { graph } = await builder.build(floatCase('l2', 'float').vectors, PARAMS);
    const mult = 1 / Math.log(16);
    expect(graph.assignProbas?.[0]).toBeCloseTo(1 - Math.exp(-1 / mult), 6);
    expect(Array.from(graph.cumNeighborPerLevel!.subarray(0, 4))).toEqual([0, 32, 48, 64]);
  });

  it('keeps level 0 only when hierarchical is false, with a central entry node, searchable from sampled entry points', async () => {
    const c = floatCase('l2', 'float');
    const built = await builder.build(c.vectors, { ...PARAMS, hierarchical: false });
    const g = built.graph;
    expect(g.levels).toBeUndefined();
    // A real entry node (max_level 0) so that Faiss's range_search has somewhere to start (k-NN 3.0-3.5).
    expect([g.entryPoint, g.maxLevel]).toEqual([centralNode(c.vectors), 0]);
    expect(g.neighbors).toHaveLength(N * 2 * 16);
    assertValidGraph(g, N);
    const entryPoints = Array.from({ length: 32 }, (_, i) => Math.floor((i * N) / 32));
    expect(graphRecall(c, built, entryPoints)).toBeGreaterThanOrEqual(0.95);
  });

  it('reports progress as a non-decreasing fraction of vectors added, from 0 to 1', async () => {
    const seen: number[] = [];
    await builder.build(floatCase('l2', 'float').vectors, PARAMS, (f, stage) => {
      expect(stage).toBe('add');
      seen.push(f);
    });
    expect(seen[0]).toBe(0);
    expect(seen.at(-1)).toBe(1);
    expect(seen.length).toBeGreaterThan(2);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]!);
  });

  it('gives the same graph with one thread whatever the chunking (batches cross chunks, one is empty)', async () => {
    const one = new CpuBuilder({ threads: 1 });
    for (const dataType of ['float', 'half_float', 'byte'] as const) {
      const { vectors } = floatCase('l2', dataType);
      const whole = vectors.chunks[0]!;
      const split = [
        whole.subarray(0, 1000 * D),
        whole.subarray(0, 0),
        whole.subarray(1000 * D, 2500 * D),
        whole.subarray(2500 * D),
      ];
      const a = await one.build(vectors, PARAMS);
      const b = await one.build({ ...vectors, chunks: split }, PARAMS);
      expect(b.graph.neighbors).toEqual(a.graph.neighbors);
      expect(b.graph.levels).toEqual(a.graph.levels);
      expect(b.graph.entryPoint).toBe(a.graph.entryPoint);
    }
  });

  describe('cancel', () => {
    // Big enough to run for many seconds on 2 cores, so the abort lands mid-build.
    const big = (): VectorSet => {
      const d = 64;
      const n = 200_000;
      return {
        dataType: 'float',
        dimension: d,
        count: n,
        chunks: [clusteredFloat({ count: n, dimension: d, seed: 3 })],
      };
    };

    it('stops a running build within 2 s of the abort and rejects with the reason', async () => {
      const abort = new AbortController();
      let abortedAt = 0;
      const built = new CpuBuilder({ threads: 2 }).build(
        big(),
        PARAMS,
        (f) => {
          if (f >= 0.05 && !abortedAt) {
            abortedAt = performance.now();
            abort.abort(new Error('the job was cancelled'));
          }
        },
        abort.signal,
      );
      await expect(built).rejects.toThrow('the job was cancelled');
      expect(abortedAt).toBeGreaterThan(0);
      expect(performance.now() - abortedAt).toBeLessThan(2000);
    });

    it('rejects at once when the signal is already aborted, and builds normally after a cancel', async () => {
      const abort = new AbortController();
      abort.abort(new Error('too late'));
      const c = floatCase('l2', 'float');
      await expect(builder.build(c.vectors, PARAMS, undefined, abort.signal)).rejects.toThrow('too late');
      const built = await builder.build(c.vectors, PARAMS, undefined, new AbortController().signal);
      assertValidGraph(built.graph, N);
    });
  });

  describe('rejects what the addon cannot build, with the reason', () => {
    const { vectors } = floatCase('l2', 'float');
    const bad: [string, VectorSet, Partial<BuildParams>, RegExp][] = [
      ['m below 2', vectors, { m: 1 }, /m must be an integer in \[2, 256\], got 1/],
      ['fractional ef_construction', vectors, { efConstruction: 1.5 }, /ef_construction must be a positive/],
      ['ef_search 0', vectors, { efSearch: 0 }, /ef_search must be a positive integer, got 0/],
      ['negative threads', vectors, { threads: -1 }, /threads must be an integer in \[0, 4096\]/],
      ['hamming on floats', vectors, { spaceType: 'hamming' }, /hamming needs binary vectors/],
      ['l2 on binary', binaryCase(64).vectors, {}, /binary vectors need space_type hamming/],
      ['wrong array type', { ...vectors, dataType: 'byte' }, {}, /byte vectors come as Int8Array; chunk 0/],
      ['count mismatch', { ...vectors, count: N + 1 }, {}, /chunks hold 4000 vectors, the set says 4001/],
      ['partial vector', { ...vectors, chunks: [vectors.chunks[0]!.subarray(1)] }, {}, /whole vectors/],
      ['no vectors', { ...vectors, count: 0, chunks: [] }, {}, /vector count must be in \[1, /],
      [
        'binary dimension',
        { ...binaryCase(64).vectors, dimension: 60 },
        { spaceType: 'hamming' },
        /multiple of 8/,
      ],
    ];
    it.each(bad)('%s', async (_name, v, params, message) => {
      const err = await builder.build(v, { ...PARAMS, ...params }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BuildInputError);
      expect((err as Error).message).toMatch(message);
    });

    it('invalid builder defaults', () => {
      expect(() => new CpuBuilder({ threads: 1.5 })).toThrow(/threads must be an integer in \[0, 4096\]/);
    });
  });
});
