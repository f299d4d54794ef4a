// The checks the CPU builder tests rely on must themselves catch broken graphs: structural faults in Faiss's
// layout, and a recall measure that drops when the links stop following distance.
import { beforeAll, describe, expect, it } from 'vitest';

import { CpuBuilder } from '../../src/builders/cpu.js';
import type { HnswGraph } from '../../src/faiss-format/hnsw-graph.js';
import { graphLayout, graphProblems, searchGraph } from '../helpers/graph-check.js';
import {
  clusteredFloat,
  distanceFunction,
  exactKnn,
  recallAtK,
  splitRows,
  uniform,
  type VectorTable,
} from '../helpers/synthetic.js';

const N = 2000;
const D = 16;
const all = clusteredFloat({ count: N + 100, dimension: D, seed: 9 });
const [baseData, queryData] = splitRows(all, D, N);
const base: VectorTable = { metric: 'l2', dimension: D, data: baseData };
const queries: VectorTable = { metric: 'l2', dimension: D, data: queryData };
let graph: HnswGraph;

beforeAll(async () => {
  const vectors = { dataType: 'float' as const, dimension: D, count: N, chunks: [baseData] };
  ({ graph } = await new CpuBuilder({ threads: 2 }).build(vectors, {
    spaceType: 'l2',
    m: 8,
    efConstruction: 64,
    efSearch: 64,
    hierarchical: true,
  }));
});

/** A copy of the graph with its neighbour array changed by `edit`. */
function edited(edit: (neighbors: Int32Array, firstSlotOf: (node: number) => number) => void): HnswGraph {
  const neighbors = graph.neighbors.slice();
  const layout = graphLayout(graph, N);
  edit(neighbors, (node) => layout.offsets[node]!);
  return { ...graph, neighbors };
}

describe('graph checks', () => {
  it('accept the graph Faiss built', () => {
    expect(graphProblems(graph, N)).toEqual([]);
  });

  it.each([
    [
      'a self loop',
      (nb: Int32Array, at: (n: number) => number) => (nb[at(5)] = 5),
      /node 5 level 0: links to itself/,
    ],
    [
      'an id out of range',
      (nb: Int32Array, at: (n: number) => number) => (nb[at(7)] = N),
      /id 2000 out of range/,
    ],
    [
      'an id after -1 padding',
      (nb: Int32Array, at: (n: number) => number) => {
        nb[at(3)] = -1;
        nb[at(3) + 1] = 4;
      },
      /node 3 level 0: id 4 after -1 padding/,
    ],
    [
      'a duplicate link',
      (nb: Int32Array, at: (n: number) => number) => (nb[at(9) + 1] = nb[at(9)]!),
      /node 9 level 0: links twice/,
    ],
  ])('catch %s', (_name, edit, problem) => {
    expect(graphProblems(edited(edit), N).join('\n')).toMatch(problem);
  });

  it('catch a wrong entry point, a level out of range and a short neighbour array', () => {
    const low = graph.levels!.findIndex((l) => l === 1);
    expect(graphProblems({ ...graph, entryPoint: low }, N).join('\n')).toMatch(/is on level 0, not the top/);
    const levels = graph.levels!.slice();
    levels[0] = 99;
    expect(graphProblems({ ...graph, levels }, N).join('\n')).toMatch(/a level is outside/);
    expect(graphProblems({ ...graph, neighbors: graph.neighbors.subarray(1) }, N).join('\n')).toMatch(
      /slots/,
    );
  });

  it('measure recall that drops when links are shuffled among nodes', () => {
    const dist = distanceFunction(base, queries);
    const truth = exactKnn(base, queries, 10);
    const recallOf = (g: HnswGraph) =>
      recallAtK(
        base,
        queries,
        Array.from({ length: 100 }, (_, q) => searchGraph(g, N, (id) => dist(q, id), 10, 32)),
        truth,
      );
    const rand = uniform(1);
    const relabel = Int32Array.from({ length: N }, (_, i) => i);
    for (let i = N - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [relabel[i], relabel[j]] = [relabel[j]!, relabel[i]!];
    }
    const shuffled = edited((nb) => nb.forEach((id, s) => id >= 0 && (nb[s] = relabel[id]!)));
    expect(recallOf(graph)).toBeGreaterThan(0.95);
    expect(recallOf(shuffled)).toBeLessThan(0.5);
  });
});
