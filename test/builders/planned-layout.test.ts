// The graph's shape known before the build (GraphBuilder.plannedLayout, native plannedLayout): both builders draw
// every node's HNSW level up front from (count, M, seed), so the index's bytes up to the stored vectors are known
// before the graph exists and the store can copy the vectors meanwhile (run-job.ts). The CPU builder is checked
// against real builds here; the GPU builder's plan is host code, checked here for what its layout must be (no GPU
// needed) and against real GPU builds on the GPU machine (test/gpu/cases.ts, scripts/gpu-check.sh tests).
import { describe, expect, it } from 'vitest';

import { CpuBuilder } from '../../src/builders/cpu.js';
import { GpuBuilder } from '../../src/builders/gpu.js';
import type { BuildParams } from '../../src/builders/types.js';
import type { HnswLayout } from '../../src/faiss-format/hnsw-graph.js';
import { defaultAssignProbas, defaultCumNeighborPerLevel } from '../../src/faiss-format/hnsw-defaults.js';
import { chooseFormat, formatPolicy } from '../../src/faiss-format/policy.js';
import { resolveLayout } from '../../src/faiss-format/validate.js';
import { splitAroundStoredVectors, storedVectorsPlacement } from '../../src/faiss-format/writer.js';
import type { VectorSet } from '../../src/vectors/types.js';
import { clusteredFloat } from '../helpers/synthetic.js';

const d = 16;
function set(count: number): VectorSet {
  return {
    dataType: 'float',
    dimension: d,
    count,
    chunks: [clusteredFloat({ count, dimension: d, seed: 3 })],
  };
}
function params(hierarchical: boolean, m = 8, gpu: BuildParams['gpu'] = {}): BuildParams {
  return { spaceType: 'l2', m, efConstruction: 40, efSearch: 40, hierarchical, threads: 1, gpu };
}
const shape = (g: HnswLayout) => ({
  M: g.M,
  levels: g.levels && Array.from(g.levels),
  assignProbas: g.assignProbas && Array.from(g.assignProbas),
  cumNeighborPerLevel: g.cumNeighborPerLevel && Array.from(g.cumNeighborPerLevel),
});

describe('CPU builder: the planned layout is the built one', () => {
  for (const hierarchical of [true, false]) {
    it(`${hierarchical ? 'hierarchical' : 'base level only'}, two seeds, and the index split's sizes agree`, async () => {
      const vectors = set(3000);
      for (const seed of [1, 99]) {
        const cpu = new CpuBuilder({ threads: 2, seed });
        const p = params(hierarchical);
        const planned = cpu.plannedLayout(vectors, p);
        const built = await cpu.build(vectors, p);
        expect(shape(built.graph)).toEqual(shape(planned));
        const format = chooseFormat({ dataType: 'float', builder: 'cpu' }, formatPolicy('compatible'));
        const index = {
          format,
          vectors,
          ids: Int32Array.from({ length: vectors.count }, (_, i) => i),
          spaceType: 'l2' as const,
          efConstruction: 40,
          efSearch: 40,
        };
        const split = splitAroundStoredVectors({ ...index, graph: built.graph })!;
        expect(storedVectorsPlacement(index, planned)).toEqual({
          beforeBytes: split.beforeBytes,
          vectorBytes: split.vectorBytes,
          afterBytes: split.afterBytes,
        });
      }
    });
  }
});

describe('GPU builder: its planned layout (host code; real GPU builds compared on the GPU machine)', () => {
  const gpu = new GpuBuilder({ seed: 42 });
  const vectors = set(200_000);

  it('base level only: the file M from the graph degree, no levels or tables, n x 2M slots', () => {
    const planned = gpu.plannedLayout(vectors, params(false, 16));
    expect(shape(planned)).toEqual({
      M: 16,
      levels: undefined,
      assignProbas: undefined,
      cumNeighborPerLevel: undefined,
    });
    expect(resolveLayout(planned, vectors.count).slots).toBe(vectors.count * 32);
    expect(gpu.plannedLayout(vectors, params(false, 16, { graphDegree: 24 })).M).toBe(12);
    expect(gpu.plannedLayout(vectors, params(false, 16, { graphDegree: 25 })).M).toBe(13);
  });

  it("hierarchical: Faiss's tables for M, levels drawn with Faiss's distribution, the same for the same seed", () => {
    const p = params(true, 16);
    const planned = gpu.plannedLayout(vectors, p);
    expect(Array.from(planned.cumNeighborPerLevel!)).toEqual(Array.from(defaultCumNeighborPerLevel(16)));
    const probas = planned.assignProbas!;
    const faiss = defaultAssignProbas(16);
    expect(probas.length).toBe(faiss.length);
    probas.forEach((x, i) => expect(Math.abs(x - faiss[i]!) / faiss[i]!).toBeLessThan(1e-6));
    const levels = planned.levels!;
    expect(levels.length).toBe(vectors.count);
    const counts = new Map<number, number>();
    for (const l of levels) counts.set(l, (counts.get(l) ?? 0) + 1);
    for (const l of counts.keys()) expect(l >= 1 && l <= probas.length).toBe(true);
    // Level 1 only: p0 = 1 - 1/M of the nodes; level 2: p1 = p0 / M (binomial, 200k draws: well within 1%).
    expect(counts.get(1)! / vectors.count).toBeCloseTo(probas[0]!, 2);
    expect(counts.get(2)! / vectors.count).toBeCloseTo(probas[1]!, 2);
    expect(Array.from(gpu.plannedLayout(vectors, p).levels!)).toEqual(Array.from(levels));
    const other = new GpuBuilder({ seed: 43 }).plannedLayout(vectors, p).levels!;
    expect(Array.from(other)).not.toEqual(Array.from(levels));
  });
});
