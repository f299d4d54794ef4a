// GPU builder checks that need a GPU, written once as plain async functions with node:assert: vitest registers
// them in test/builders/gpu.test.ts (skipped with the reason where there is no GPU), and test/gpu/run.ts runs
// them under node:test on the GPU machine (which has no node_modules; scripts/gpu-check.sh bundles it).
import assert from 'node:assert/strict';

import { usableGpuCount } from '../../src/builders/choose.js';
import { centralNode } from '../../src/builders/entry-node.js';
import { GpuBuilder } from '../../src/builders/gpu.js';
import { gpuInfo, gpuWarmUp } from '../../src/builders/native.js';
import type { BuildParams, BuiltGraph, GpuBuildOptions } from '../../src/builders/types.js';
import type { HnswGraph, HnswLayout } from '../../src/faiss-format/hnsw-graph.js';
import type { DataType, SpaceType, VectorSet } from '../../src/vectors/types.js';
import {
  graphLayout,
  graphProblems,
  linksOf,
  reachableFraction,
  searchGraph,
} from '../helpers/graph-check.js';
import {
  asStored,
  clusteredBinary,
  clusteredFloat,
  distanceFunction,
  exactKnn,
  normalizeRows,
  recallAtK,
  splitRows,
  uniform,
  type VectorTable,
} from '../helpers/synthetic.js';

export interface GpuCase {
  readonly name: string;
  readonly run: () => Promise<void>;
}

/** Why these checks cannot run here (no GPU builder or no device), or null. */
export function gpuSkipReason(): string | null {
  const info = gpuInfo();
  if (usableGpuCount(info) > 0) return null;
  return info.error ?? 'no usable GPU';
}

const builder = new GpuBuilder({ seed: 42 });

interface Data {
  vectors: VectorSet;
  base: VectorTable;
  queries: VectorTable;
}

/** Clustered data of one type, split into base and held-out queries; tables hold what the index holds. */
function data(
  dataType: DataType,
  space: SpaceType,
  n: number,
  nq: number,
  d: number,
  clusters = 64,
  clusterSpread?: number,
): Data {
  if (dataType === 'binary') {
    const bits = clusteredBinary({ count: n + nq, dimension: d, seed: 11, clusters });
    const [b, q] = splitRows(bits, d / 8, n);
    return {
      vectors: { dataType, dimension: d, count: n, chunks: [b] },
      base: { metric: 'hamming', dimension: d, data: b },
      queries: { metric: 'hamming', dimension: d, data: q },
    };
  }
  let all = clusteredFloat({
    count: n + nq,
    dimension: d,
    seed: 5,
    clusters,
    ...(clusterSpread !== undefined ? { clusterSpread } : {}),
  });
  if (space === 'innerproduct') all = normalizeRows(all, d);
  // Recall is measured on what the index holds: the exact float values of fp16 / int8 vectors.
  const { stored, held } = asStored(all, dataType);
  const [chunk] = splitRows(stored, d, n);
  const [base, queries] = splitRows(held, d, n);
  // Two chunks, to exercise the upload across chunk boundaries.
  const per = dataType === 'float' || dataType === 'half_float' || dataType === 'byte' ? d : d / 8;
  const cut = Math.floor(n / 3) * per;
  return {
    vectors: { dataType, dimension: d, count: n, chunks: [chunk.subarray(0, cut), chunk.subarray(cut)] },
    base: { metric: space, dimension: d, data: base },
    queries: { metric: space, dimension: d, data: queries },
  };
}

function params(space: SpaceType, hierarchical: boolean, gpu: GpuBuildOptions = {}, m = 16): BuildParams {
  return { spaceType: space, m, efConstruction: 100, efSearch: 100, hierarchical, gpu };
}

/** Level-0 links of every node as lists. */
function baseLinks(graph: HnswGraph, count: number): Int32Array[] {
  const layout = graphLayout(graph, count);
  return Array.from({ length: count }, (_, i) => linksOf(graph, layout, i, 0));
}

/** Searches the graph as Faiss does: from the best of 32 random nodes (base level only) or from the top. */
function recallOf(built: BuiltGraph, d: Data, ef = 100): number {
  const count = d.vectors.count;
  const nq = d.queries.data.length / (d.base.data.length / count);
  const rand = uniform(99);
  const dist = distanceFunction(d.base, d.queries);
  const found: number[][] = [];
  for (let q = 0; q < nq; q++) {
    let entry = [0];
    if (!built.graph.levels) {
      let best = -1;
      let bestD = Infinity;
      for (let t = 0; t < 32; t++) {
        const id = Math.floor(rand() * count);
        const v = dist(q, id);
        if (v < bestD) [best, bestD] = [id, v];
      }
      entry = [best];
    }
    found.push(searchGraph(built.graph, count, (id) => dist(q, id), 10, ef, entry));
  }
  return recallAtK(d.base, d.queries, found, exactKnn(d.base, d.queries, 10));
}

/** The raw k-NN lists (tuning.debugKnnStage) against an exact CPU reference. */
async function knnRecall(
  dataType: DataType,
  space: SpaceType,
  algo: 'exact' | 'approximate',
  n: number,
  d: number,
) {
  const dd = data(dataType, space, n, 0, d);
  const built: BuiltGraph = await builder.build(
    dd.vectors,
    params(
      space,
      false,
      { knnAlgorithm: algo, intermediateDegree: 32, graphDegree: 32, tuning: { debugKnnStage: true } },
      8,
    ),
  );
  const links = baseLinks(built.graph, n);
  const sample = Array.from({ length: Math.min(n, 300) }, (_, i) => Math.floor((i * n) / Math.min(n, 300)));
  const per = dd.base.data.length / n;
  const rows = (ids: number[]) => {
    const Ctor = dd.base.data.constructor as new (len: number) => typeof dd.base.data;
    const out = new Ctor(ids.length * per);
    ids.forEach((id, i) => out.set(dd.base.data.subarray(id * per, (id + 1) * per), i * per));
    return out;
  };
  const queries: VectorTable = { ...dd.base, data: rows(sample) };
  const truth = exactKnn(dd.base, queries, 33);
  // The reference includes the query itself at distance 0; drop it (the GPU excludes self).
  const k = 32;
  const ids = new Int32Array(sample.length * k);
  const distances = new Float64Array(sample.length * k);
  sample.forEach((self, q) => {
    let j = 0;
    for (let r = 0; r < 33 && j < k; r++) {
      if (truth.ids[q * 33 + r] === self) continue;
      ids[q * k + j] = truth.ids[q * 33 + r]!;
      distances[q * k + j] = truth.distances[q * 33 + r]!;
      j++;
    }
  });
  for (const [q, self] of sample.entries()) {
    const row = links[self]!;
    assert.equal(row.length, k, `row ${self} holds ${row.length} neighbours, not ${k}`);
    assert.ok(!row.includes(self), `row ${self} lists itself`);
    assert.equal(new Set(row).size, k, `row ${self} has duplicates`);
    void q;
  }
  return recallAtK(
    dd.base,
    queries,
    sample.map((s) => links[s]!),
    { k, ids, distances },
  );
}

export const gpuCases: GpuCase[] = [
  ...(
    [
      ['float', 'l2', 0.98],
      ['float', 'innerproduct', 0.98],
      ['half_float', 'l2', 0.98],
      ['byte', 'l2', 0.995],
      ['byte', 'innerproduct', 0.995],
      ['binary', 'hamming', 0.995],
    ] as const
  ).map(([type, space, min]) => ({
    name: `exact k-NN lists match a CPU reference: ${type} ${space}`,
    run: async () => {
      const r = await knnRecall(type, space, 'exact', 1500, type === 'binary' ? 64 : 24);
      assert.ok(r >= min, `recall ${r.toFixed(4)} < ${min}`);
    },
  })),
  {
    name: 'approximate k-NN lists (k-means lists) reach 0.9 recall of the exact lists',
    run: async () => {
      const r = await knnRecall('float', 'l2', 'approximate', 20000, 32);
      assert.ok(r >= 0.9, `recall ${r.toFixed(4)} < 0.9`);
    },
  },
  {
    name: 'base-level graph: valid Faiss layout, full rows of the graph degree, no self/duplicate/invalid ids, connected',
    run: async () => {
      const d = data('float', 'l2', 5000, 0, 32);
      const built = await builder.build(d.vectors, params('l2', false));
      assert.deepEqual(graphProblems(built.graph, 5000), []);
      assert.equal(built.graph.M, 16);
      // A real entry node on the base level (for Faiss's range_search in k-NN 3.0-3.5), max_level 0.
      assert.equal(built.graph.entryPoint, centralNode(d.vectors));
      assert.equal(built.graph.maxLevel, 0);
      assert.equal(built.graph.levels, undefined);
      const links = baseLinks(built.graph, 5000);
      assert.ok(
        links.every((l) => l.length === 32),
        'every row holds 32 neighbours',
      );
      assert.ok(reachableFraction(built.graph, 5000) > 0.999, 'level 0 is connected');
      for (const stage of ['upload', 'knn', 'ladder', 'prune', 'reverse', 'download'])
        assert.ok((built.stageSeconds[stage] ?? -1) >= 0, `stage ${stage} is timed`);
      assert.ok(built.peakDeviceBytes > 0);
    },
  },
  {
    name: 'hierarchical graph: valid multi-level layout, entry point on the top level, upper links stay on their level',
    run: async () => {
      const d = data('float', 'innerproduct', 6000, 0, 32);
      const built = await builder.build(d.vectors, params('innerproduct', true));
      assert.deepEqual(graphProblems(built.graph, 6000), []);
      assert.ok(built.graph.levels && built.graph.maxLevel >= 1);
      assert.equal(built.graph.levels[built.graph.entryPoint]! - 1, built.graph.maxLevel);
      assert.ok((built.stageSeconds.hierarchy ?? -1) >= 0);
    },
  },
  {
    name: 'recall@10 at ef 100 of the final graph (base level from 32 random entries, and hierarchical) >= 0.95',
    run: async () => {
      const d = data('float', 'l2', 20000, 300, 48);
      const flat = recallOf(await builder.build(d.vectors, params('l2', false)), d);
      const hier = recallOf(await builder.build(d.vectors, params('l2', true)), d);
      assert.ok(
        flat >= 0.95 && hier >= 0.95,
        `recall base-level ${flat.toFixed(4)}, hierarchical ${hier.toFixed(4)}`,
      );
    },
  },
  {
    name: 'well-separated small clusters stay navigable from random entry points (bridges, ladder)',
    run: async () => {
      const d = data('float', 'l2', 20000, 300, 32, 1000, 0.15);
      const flat = recallOf(await builder.build(d.vectors, params('l2', false)), d);
      assert.ok(flat >= 0.9, `recall base-level ${flat.toFixed(4)}`);
    },
  },
  {
    name: 'hamming, byte and half_float graphs search well',
    run: async () => {
      for (const [type, space] of [
        ['binary', 'hamming'],
        ['byte', 'l2'],
        ['half_float', 'innerproduct'],
      ] as const) {
        const d = data(type, space, 8000, 200, type === 'binary' ? 256 : 32);
        const r = recallOf(await builder.build(d.vectors, params(space, false)), d);
        assert.ok(r >= 0.9, `${type} ${space}: recall ${r.toFixed(4)}`);
      }
    },
  },
  {
    name: 'a memory limit the build cannot fit fails fast with a clear message',
    run: async () => {
      const d = data('float', 'l2', 3000, 0, 32);
      await assert.rejects(
        builder.build(d.vectors, params('l2', false, { memoryLimitBytes: 2 ** 20 })),
        /GPU build failed: GPU memory: this build needs about .* GiB .* but only .* may be used/,
      );
      // The device is still usable afterwards.
      const ok = await builder.build(d.vectors, params('l2', false));
      assert.equal(graphProblems(ok.graph, 3000).length, 0);
    },
  },
  {
    name: 'progress is reported in order, ending at 1; the exact path is deterministic',
    run: async () => {
      const d = data('float', 'l2', 4000, 0, 16);
      const seen: [number, string][] = [];
      const p = params('l2', false, { knnAlgorithm: 'exact' });
      const a = await builder.build(d.vectors, p, (f, s) => seen.push([f, s]));
      const b = await builder.build(d.vectors, p);
      assert.ok(seen.length >= 5);
      assert.ok(
        seen.every(([f], i) => i === 0 || f >= seen[i - 1]![0]),
        'fractions never go back',
      );
      assert.equal(seen.at(-1)![0], 1);
      assert.deepEqual(a.graph.neighbors, b.graph.neighbors);
    },
  },
  {
    name: 'warm-up: a device is set up once per process, builds share it (two at once too), a missing device fails clearly',
    run: async () => {
      await gpuWarmUp(0);
      const again = await gpuWarmUp(0);
      assert.ok(again < 0.1, `a second warm-up of device 0 took ${again} s: the first one was not kept`);
      const d = data('float', 'l2', 4000, 0, 16);
      const p = params('l2', false, { knnAlgorithm: 'exact' });
      // One build takes the warm stream, cuBLAS handle and staging buffers; the other, finding them in use, its own.
      const [a, b] = await Promise.all([builder.build(d.vectors, p), builder.build(d.vectors, p)]);
      assert.deepEqual(a.graph.neighbors, b.graph.neighbors);
      await assert.rejects(gpuWarmUp(1024), /GPU 1024 warm-up failed: .*does not exist/);
    },
  },
  {
    name: 'the planned layout (plannedLayout, host only) is the built one: base level, hierarchical, graph degree',
    run: async () => {
      const d = data('float', 'l2', 20_000, 0, 32);
      const shape = (g: HnswLayout) => ({
        M: g.M,
        levels: g.levels && Array.from(g.levels),
        assignProbas: g.assignProbas && Array.from(g.assignProbas),
        cumNeighborPerLevel: g.cumNeighborPerLevel && Array.from(g.cumNeighborPerLevel),
      });
      for (const p of [params('l2', false), params('l2', true), params('l2', true, { graphDegree: 24 }, 8)]) {
        const built = await builder.build(d.vectors, p);
        assert.deepEqual(shape(built.graph), shape(builder.plannedLayout(d.vectors, p)), JSON.stringify(p));
      }
    },
  },
  {
    name: 'tiny sets: every node links to all others',
    run: async () => {
      const d = data('float', 'l2', 9, 0, 8);
      const built = await builder.build(d.vectors, params('l2', false));
      assert.deepEqual(graphProblems(built.graph, 9), []);
      assert.ok(baseLinks(built.graph, 9).every((l) => l.length === 8));
    },
  },
];
