// Everything the writer checks before it emits the first byte, so a bad graph fails the job instead of producing
// a file that Faiss 1.14+ rejects at load time (or, in older Faiss, one that silently searches wrong).
import { checkDocIds } from '../vectors/knndid.js';
import { type VectorSet, type VectorShape, vectorSetProblem } from '../vectors/types.js';
import type { SpaceType } from '../vectors/types.js';
import { FaissFormatError } from './errors.js';
import type { FaissFormat } from './formats.js';
import { checkFormat, isCagraIndex } from './formats.js';
import type { HnswGraph, HnswLayout } from './hnsw-graph.js';
import { defaultAssignProbas, defaultCumNeighborPerLevel } from './hnsw-defaults.js';

/** Faiss 1.14+ rejects headers with d outside [0, 2^20]. */
export const MAX_DIMENSION = 1 << 20;
const INT32_MAX = 0x7fffffff;

export interface FaissIndexInput {
  readonly format: FaissFormat;
  readonly graph: HnswGraph;
  /** Written as the storage unless format.storage is 'none'; its count and dimension size the index anyway. */
  readonly vectors: VectorSet;
  /** One doc id per vector (position i = internal id i), strictly increasing; written as the int64 id map. */
  readonly ids: Int32Array;
  readonly spaceType: SpaceType;
  readonly efConstruction: number;
  readonly efSearch: number;
  /** CAGRA layouts: how many random nodes a base-level search starts from (default 32). */
  readonly numBaseLevelSearchEntrypoints?: number;
}

/**
 * An index before its vectors, ids and graph exist: enough for the sizes of its sections (their bytes come
 * later), as a job plans the file while it is still downloading.
 */
export type FaissIndexShape = Omit<FaissIndexInput, 'graph' | 'vectors' | 'ids'> & {
  readonly vectors: VectorShape;
};

/** The graph's tables with Faiss's defaults filled in, and facts the writer needs. */
export interface ResolvedGraph {
  readonly count: number;
  readonly assignProbas: Float64Array;
  readonly cum: Int32Array;
  /** Absent: every node on level 1. */
  readonly levels: Int32Array | undefined;
  /** Total neighbor slots: sum over nodes of cum[levels[i]]. */
  readonly slots: number;
  /** Every node on level 1 only. */
  readonly baseLevelOnly: boolean;
}

export const DEFAULT_BASE_LEVEL_SEARCH_ENTRYPOINTS = 32;

function bad(message: string): FaissFormatError {
  return new FaissFormatError('BAD_INPUT', message);
}

/** Throws FaissFormatError naming the first problem; returns the graph tables the writer emits. */
export function validateFaissIndexInput(input: FaissIndexInput): ResolvedGraph {
  const { format, vectors, ids, graph } = input;
  checkFormat(format, vectors.dataType, input.spaceType);
  const count = vectors.count;
  if (!Number.isInteger(count) || count < 1 || count > INT32_MAX) {
    throw bad(`an index needs 1 to ${INT32_MAX} vectors (graph ids are int32), got ${count}`);
  }
  checkVectors(vectors, format.storage !== 'none');
  if (ids.length !== count)
    throw bad(`the id map needs one doc id per vector: ${ids.length} ids for ${count} vectors`);
  checkIds(ids);
  checkInt32('efConstruction', input.efConstruction, 1);
  checkInt32('efSearch', input.efSearch, 1);
  checkInt32(
    'numBaseLevelSearchEntrypoints',
    input.numBaseLevelSearchEntrypoints ?? DEFAULT_BASE_LEVEL_SEARCH_ENTRYPOINTS,
    1,
  );
  const resolved = resolveGraph(graph, count);
  checkNeighbors(graph.neighbors, resolved);
  checkEntryPoint(input, resolved);
  return resolved;
}

function checkInt32(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value > INT32_MAX) {
    throw bad(`${name} must be an integer in [${min}, ${INT32_MAX}], got ${value}`);
  }
}

function checkVectors(vectors: VectorSet, stored: boolean): void {
  // Chunks only matter when they are written (graph-only files take just the count and dimension).
  const problem = vectorSetProblem(vectors, stored);
  if (problem) throw bad(problem);
  if (vectors.dataType !== 'binary' && vectors.dimension > MAX_DIMENSION) {
    throw bad(`dimension ${vectors.dimension} exceeds ${MAX_DIMENSION}, the largest Faiss 1.14+ loads`);
  }
}

/** The id map k-NN's reader relies on: the .knndid rule (vectors/knndid.ts), reported as a writer input error. */
function checkIds(ids: Int32Array): void {
  try {
    checkDocIds(ids);
  } catch (e) {
    throw bad((e as Error).message);
  }
}

/** Fills in Faiss's defaults and checks the level tables, levels and neighbor count. */
export function resolveGraph(graph: HnswGraph, count: number): ResolvedGraph {
  const resolved = resolveLayout(graph, count);
  if (graph.neighbors.length !== resolved.slots) {
    throw bad(
      `neighbors holds ${graph.neighbors.length} slots but the levels need ${resolved.slots} (sum of cum_nneighbor_per_level[levels[i]])`,
    );
  }
  return resolved;
}

/** resolveGraph for a graph's shape alone (no links yet): its tables, levels and slot count. */
export function resolveLayout(graph: HnswLayout, count: number): ResolvedGraph {
  if (!Number.isInteger(graph.M) || graph.M < 2) throw bad(`HNSW M must be an integer >= 2, got ${graph.M}`);
  const cum = graph.cumNeighborPerLevel ?? defaultCumNeighborPerLevel(graph.M);
  const assignProbas = graph.assignProbas ?? defaultAssignProbas(graph.M);
  checkLevelTables(cum, assignProbas);
  const { levels } = graph;
  let slots = count * cum[1]!;
  let baseLevelOnly = true;
  if (levels) {
    if (levels.length !== count) throw bad(`levels has ${levels.length} entries for ${count} vectors`);
    const top = cum.length - 1;
    slots = 0;
    for (let i = 0; i < count; i++) {
      const level = levels[i]!;
      if (!(level >= 1 && level <= top)) {
        throw bad(
          `levels[${i}] = ${level}: a node's level + 1 must be in [1, ${top}] (cum_nneighbor_per_level has ${cum.length} entries)`,
        );
      }
      if (level !== 1) baseLevelOnly = false;
      slots += cum[level]!;
    }
  }
  return { count, assignProbas, cum, levels, slots, baseLevelOnly };
}

function checkLevelTables(cum: Int32Array, probas: Float64Array): void {
  if (cum.length < 2 || cum[0] !== 0 || cum[1]! < 1)
    throw bad(`cum_nneighbor_per_level must start [0, 2M, ...], got [${Array.from(cum.subarray(0, 4))}...]`);
  for (let i = 1; i < cum.length; i++) {
    if (cum[i]! < cum[i - 1]!)
      throw bad(`cum_nneighbor_per_level decreases at ${i}: ${cum[i]} < ${cum[i - 1]}`);
  }
  if (probas.length !== cum.length - 1) {
    throw bad(`assign_probas has ${probas.length} levels but cum_nneighbor_per_level has ${cum.length - 1}`);
  }
  for (const [i, p] of probas.entries()) {
    if (!(p >= 0 && p <= 1)) throw bad(`assign_probas[${i}] = ${p} is not a probability`);
  }
}

/** Every slot holds -1 or a node id, and a node's valid links come before its -1 padding (search stops at -1). */
function checkNeighbors(neighbors: Int32Array, g: ResolvedGraph): void {
  if (!g.levels) {
    checkFixedStride(neighbors, g.cum[1]!, g.count);
    return;
  }
  const { cum, levels, count } = g;
  let offset = 0;
  for (let node = 0; node < count; node++) {
    const nodeLevels = levels[node]!;
    for (let level = 0; level < nodeLevels; level++) {
      checkRun(neighbors, offset + cum[level]!, offset + cum[level + 1]!, count, node, level);
    }
    offset += cum[nodeLevels]!;
  }
}

function checkFixedStride(neighbors: Int32Array, stride: number, count: number): void {
  for (let node = 0, start = 0; node < count; node++, start += stride) {
    checkRun(neighbors, start, start + stride, count, node, 0);
  }
}

function checkRun(
  neighbors: Int32Array,
  start: number,
  end: number,
  count: number,
  node: number,
  level: number,
): void {
  let padded = false;
  for (let i = start; i < end; i++) {
    const id = neighbors[i]!;
    if (id === -1) {
      padded = true;
      continue;
    }
    if (id < 0 || id >= count) {
      throw new FaissFormatError(
        'NEIGHBOR_OUT_OF_RANGE',
        `neighbors[${i}] = ${id} (node ${node}, level ${level}) is outside [-1, ${count})`,
      );
    }
    if (padded) {
      throw bad(
        `node ${node} level ${level}: link ${id} at neighbors[${i}] follows a -1, and search stops at the first -1`,
      );
    }
  }
}

function checkEntryPoint(input: FaissIndexInput, g: ResolvedGraph): void {
  const { entryPoint, maxLevel } = input.graph;
  const index = input.format.index;
  if (entryPoint === -1) {
    if (!isCagraIndex(index)) {
      throw bad(
        `${index} needs a real entry point (with entry_point -1 its search returns nothing): give a node of the ` +
          `top level, or write a base-level-only graph as IHNc/IHc2/IBHc`,
      );
    }
    if (!g.baseLevelOnly) throw bad('the graph has upper levels but entry_point is -1');
    if (maxLevel !== -1) throw bad(`a graph without entry point must have max_level -1, got ${maxLevel}`);
    return;
  }
  if (!Number.isInteger(entryPoint) || entryPoint < 0 || entryPoint >= g.count) {
    throw bad(`entry_point ${entryPoint} is outside [-1, ${g.count})`);
  }
  const entryLevel = g.levels ? g.levels[entryPoint]! : 1;
  const topLevel = g.levels ? maxOf(g.levels) : 1;
  if (entryLevel !== topLevel) {
    throw bad(
      `entry_point ${entryPoint} reaches level ${entryLevel - 1} but the graph's top level is ${topLevel - 1}`,
    );
  }
  if (maxLevel !== entryLevel - 1) {
    throw bad(`max_level must be levels[entry_point] - 1 = ${entryLevel - 1}, got ${maxLevel}`);
  }
}

function maxOf(values: Int32Array): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i]! > max) max = values[i]!;
  return max;
}
