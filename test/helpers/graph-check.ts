// Checks an HnswGraph against Faiss's layout (src/faiss-format/README.md) and searches it like Faiss's HNSW
// does, so builder tests can measure recall without the file writer.
import type { HnswGraph } from '../../src/faiss-format/hnsw-graph.js';

/** Faiss's default cum_nneighbor_per_level for M: [0, 2M, 3M, ...], one level per assign probability. */
export function defaultCumNeighbors(M: number): Int32Array {
  const mult = 1 / Math.log(M);
  const cum = [0];
  for (let level = 0; ; level++) {
    const p = Math.exp(-level / mult) * (1 - Math.exp(-1 / mult));
    if (p < 1e-9) break;
    cum.push(cum[cum.length - 1]! + (level === 0 ? 2 * M : M));
  }
  return Int32Array.from(cum);
}

/** Where each node's links live: node i's links at level l are neighbors[offsets[i] + cum[l], ... + cum[l+1]). */
export interface GraphLayout {
  readonly cum: Int32Array;
  /** Per node: its top level + 1. */
  readonly levels: Int32Array;
  readonly offsets: Float64Array;
}

export function graphLayout(graph: HnswGraph, count: number): GraphLayout {
  const cum = graph.cumNeighborPerLevel ?? defaultCumNeighbors(graph.M);
  const levels = graph.levels ?? new Int32Array(count).fill(1);
  const offsets = new Float64Array(count + 1);
  for (let i = 0; i < count; i++) offsets[i + 1] = offsets[i]! + (cum[levels[i]!] ?? NaN);
  return { cum, levels, offsets };
}

/** Node `node`'s valid links at `level` (the slots before the first -1). */
export function linksOf(graph: HnswGraph, layout: GraphLayout, node: number, level: number): Int32Array {
  const start = layout.offsets[node]! + layout.cum[level]!;
  const slots = graph.neighbors.subarray(start, layout.offsets[node]! + layout.cum[level + 1]!);
  const end = slots.indexOf(-1);
  return end < 0 ? slots : slots.subarray(0, end);
}

/**
 * Everything wrong with `graph` as a Faiss HNSW over `count` nodes (empty when valid): cumulative counts,
 * levels, array sizes, entry point and max level, link ids in range, -1 only as padding after valid ids,
 * no self loops or duplicate links, and links only to nodes present on that level.
 */
export function graphProblems(graph: HnswGraph, count: number, limit = 20): string[] {
  const problems: string[] = [];
  const add = (p: string) => problems.length < limit && problems.push(p);
  const { M } = graph;
  const cum = graph.cumNeighborPerLevel ?? defaultCumNeighbors(M);
  if (cum[0] !== 0 || cum[1] !== 2 * M)
    add(`cum_nneighbor_per_level must start [0, 2M=${2 * M}], got ${cum}`);
  for (let l = 2; l < cum.length; l++) if (cum[l]! - cum[l - 1]! !== M) add(`cum[${l}] - cum[${l - 1}] != M`);
  if (graph.assignProbas && graph.assignProbas.length !== cum.length - 1) {
    add(`${graph.assignProbas.length} assign probabilities for ${cum.length - 1} levels`);
  }
  const levels = graph.levels;
  if (levels && levels.length !== count) add(`levels has ${levels.length} entries for ${count} nodes`);
  if (levels?.some((v) => v < 1 || v >= cum.length)) add(`a level is outside [1, ${cum.length - 1}]`);
  if (problems.length > 0) return problems;

  const layout = graphLayout(graph, count);
  if (graph.neighbors.length !== layout.offsets[count]) {
    return [`neighbors has ${graph.neighbors.length} slots, the levels need ${layout.offsets[count]}`];
  }
  checkEntryPoint(graph, layout, count, add);
  for (let i = 0; i < count && problems.length < limit; i++) {
    for (let l = 0; l < layout.levels[i]!; l++) checkLinks(graph, layout, count, i, l, add);
  }
  return problems;
}

function checkEntryPoint(
  graph: HnswGraph,
  layout: GraphLayout,
  count: number,
  add: (p: string) => void,
): void {
  const { entryPoint: ep, maxLevel } = graph;
  if (!graph.levels) {
    const none = ep === -1 && maxLevel === -1;
    const node = Number.isInteger(ep) && ep >= 0 && ep < count && maxLevel === 0;
    if (!none && !node)
      add(`a base-level-only graph has entry point and max level -1, or an entry node and max level 0`);
    return;
  }
  let top = 0;
  for (const v of layout.levels) top = Math.max(top, v - 1);
  if (ep < 0 || ep >= count) return void add(`entry point ${ep} is not a node`);
  if (maxLevel !== top) add(`max level ${maxLevel}, but the highest node level is ${top}`);
  if (layout.levels[ep]! - 1 !== maxLevel)
    add(`entry point ${ep} is on level ${layout.levels[ep]! - 1}, not the top`);
}

function checkLinks(
  graph: HnswGraph,
  layout: GraphLayout,
  count: number,
  node: number,
  level: number,
  add: (p: string) => void,
): void {
  const start = layout.offsets[node]! + layout.cum[level]!;
  const slots = graph.neighbors.subarray(start, layout.offsets[node]! + layout.cum[level + 1]!);
  const seen = new Set<number>();
  let padding = false;
  for (const id of slots) {
    if (id === -1) {
      padding = true;
      continue;
    }
    const where = `node ${node} level ${level}`;
    if (padding) return void add(`${where}: id ${id} after -1 padding`);
    if (id < -1 || id >= count) return void add(`${where}: id ${id} out of range`);
    if (id === node) return void add(`${where}: links to itself`);
    if (seen.has(id)) return void add(`${where}: links twice to ${id}`);
    if (layout.levels[id]! <= level)
      return void add(`${where}: links to ${id}, which is not on level ${level}`);
    seen.add(id);
  }
  if (level === 0 && count > 1 && seen.size === 0) add(`node ${node} has no links on level 0`);
}

/** Throws an Error listing the graph's problems, if any. */
export function assertValidGraph(graph: HnswGraph, count: number): void {
  const problems = graphProblems(graph, count);
  if (problems.length > 0) throw new Error(`invalid HNSW graph:\n  ${problems.join('\n  ')}`);
}

/** Share of the nodes reachable on level 0 from the entry point (node 0 for base-level-only graphs). */
export function reachableFraction(graph: HnswGraph, count: number): number {
  const layout = graphLayout(graph, count);
  const seen = new Uint8Array(count);
  const stack = [Math.max(0, graph.entryPoint)];
  seen[stack[0]!] = 1;
  let reached = 1;
  while (stack.length > 0) {
    for (const nb of linksOf(graph, layout, stack.pop()!, 0)) {
      if (seen[nb]) continue;
      seen[nb] = 1;
      reached++;
      stack.push(nb);
    }
  }
  return reached / count;
}

/** A binary heap of (distance, id), smallest distance on top (or largest, with `max`). */
class Heap {
  private readonly d: number[] = [];
  private readonly ids: number[] = [];
  constructor(private readonly max = false) {}
  get size(): number {
    return this.d.length;
  }
  topDistance(): number {
    return this.d[0]!;
  }
  push(dist: number, id: number): void {
    this.d.push(dist);
    this.ids.push(id);
    for (let i = this.d.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.d[0]!, this.ids[0]!];
    const lastD = this.d.pop()!;
    const lastId = this.ids.pop()!;
    if (this.d.length > 0) {
      this.d[0] = lastD;
      this.ids[0] = lastId;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.d.length && this.before(l, best)) best = l;
        if (r < this.d.length && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
  private before(a: number, b: number): boolean {
    return this.max ? this.d[a]! > this.d[b]! : this.d[a]! < this.d[b]!;
  }
  private swap(a: number, b: number): void {
    [this.d[a], this.d[b]] = [this.d[b]!, this.d[a]!];
    [this.ids[a], this.ids[b]] = [this.ids[b]!, this.ids[a]!];
  }
}

/**
 * The k nearest nodes found by HNSW search, closest first: greedy descent through the upper levels from the
 * entry point, then a best-first search of level 0 with `ef` candidates. Base-level-only graphs start level 0
 * from `entryPoints` (default node 0), as CAGRA search does. `distance(id)` is the query's distance to a node.
 */
export function searchGraph(
  graph: HnswGraph,
  count: number,
  distance: (id: number) => number,
  k: number,
  ef: number,
  entryPoints: readonly number[] = [0],
): number[] {
  const layout = graphLayout(graph, count);
  let starts = entryPoints;
  if (graph.levels && graph.entryPoint >= 0) {
    let best = graph.entryPoint;
    let bestD = distance(best);
    for (let level = graph.maxLevel; level >= 1; level--) {
      for (let improved = true; improved;) {
        improved = false;
        for (const nb of linksOf(graph, layout, best, level)) {
          const d = distance(nb);
          if (d < bestD) [best, bestD, improved] = [nb, d, true];
        }
      }
    }
    starts = [best];
  }
  return searchLevelZero(graph, layout, count, distance, Math.max(k, ef), starts).slice(0, k);
}

function searchLevelZero(
  graph: HnswGraph,
  layout: GraphLayout,
  count: number,
  distance: (id: number) => number,
  ef: number,
  starts: readonly number[],
): number[] {
  const visited = new Uint8Array(count);
  const candidates = new Heap();
  const results = new Heap(true);
  for (const s of starts) {
    if (visited[s]) continue;
    visited[s] = 1;
    const d = distance(s);
    candidates.push(d, s);
    results.push(d, s);
  }
  while (results.size > ef) results.pop();
  while (candidates.size > 0) {
    const [d, node] = candidates.pop();
    if (results.size >= ef && d > results.topDistance()) break;
    for (const nb of linksOf(graph, layout, node, 0)) {
      if (visited[nb]) continue;
      visited[nb] = 1;
      const dn = distance(nb);
      if (results.size < ef || dn < results.topDistance()) {
        candidates.push(dn, nb);
        results.push(dn, nb);
        if (results.size > ef) results.pop();
      }
    }
  }
  const out: number[] = [];
  while (results.size > 0) out.push(results.pop()[1]);
  return out.reverse();
}
