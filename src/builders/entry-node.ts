// A real entry node for base-level-only (CAGRA layout) graphs. k-NN's CAGRA search ignores it (it samples random
// base-level nodes), but Faiss's range_search starts from the entry point: with entry_point = max_level = -1,
// k-NN 3.0-3.5 return no results from radial search (k-NN issue #3160, fixed only by k-NN's Faiss patch 0009 in
// 3.6). So every base-level graph gets entry_point = a central node and max_level = 0; base_level_only stays 1
// (every node is still on level 1 only), and nothing else changes for k-NN's readers.
import type { HnswGraph } from '../faiss-format/hnsw-graph.js';
import { float16BitsToFloat32 } from '../vectors/fp16.js';
import type { VectorSet } from '../vectors/types.js';

/** At most this many vectors are looked at, and at most this many elements in all (fast on any set). */
const MAX_SAMPLE = 4096;
const MAX_SAMPLE_ELEMENTS = 2 ** 24;

/** The graph with an entry node when it is base-level-only without one; any other graph as it is. */
export function withEntryNode(graph: HnswGraph, vectors: VectorSet): HnswGraph {
  if (graph.levels || graph.entryPoint !== -1 || vectors.count === 0) return graph;
  return { ...graph, entryPoint: centralNode(vectors), maxLevel: 0 };
}

/**
 * The sampled vector nearest (L2, element-wise; bits as 0/1 for binary) to the sample's mean: a node from which
 * greedy search reaches any region of the data in few hops. Sampling evenly spaced vectors keeps the cost at
 * about MAX_SAMPLE_ELEMENTS, a few milliseconds, whatever the set's size.
 */
export function centralNode(vectors: VectorSet): number {
  const { count } = vectors;
  const d = vectors.dimension;
  const size = Math.max(1, Math.min(count, MAX_SAMPLE, Math.floor(MAX_SAMPLE_ELEMENTS / d)));
  const sample = Array.from({ length: size }, (_, i) => Math.floor((i * count) / size));
  const read = reader(vectors);
  const row = new Float64Array(d);
  const mean = new Float64Array(d);
  for (const node of sample) {
    read(node, row);
    for (let j = 0; j < d; j++) mean[j]! += row[j]!;
  }
  for (let j = 0; j < d; j++) mean[j]! /= size;
  let best = sample[0]!;
  let bestDistance = Infinity;
  for (const node of sample) {
    read(node, row);
    let distance = 0;
    for (let j = 0; j < d; j++) distance += (row[j]! - mean[j]!) ** 2;
    if (distance < bestDistance) [best, bestDistance] = [node, distance];
  }
  return best;
}

/** Reads vector `node` as numbers into `out` (length = dimension). */
function reader(vectors: VectorSet): (node: number, out: Float64Array) => void {
  const d = vectors.dimension;
  const perVector = vectors.dataType === 'binary' ? d / 8 : d;
  const starts: number[] = [];
  let total = 0;
  for (const chunk of vectors.chunks) {
    starts.push(total);
    total += chunk.length / perVector;
  }
  return (node, out) => {
    let c = starts.length - 1;
    while (starts[c]! > node) c--;
    const chunk = vectors.chunks[c]!;
    const at = (node - starts[c]!) * perVector;
    if (vectors.dataType === 'binary') {
      for (let j = 0; j < d; j++) out[j] = (chunk[at + (j >> 3)]! >> (7 - (j & 7))) & 1;
    } else if (vectors.dataType === 'half_float') {
      for (let j = 0; j < d; j++) out[j] = float16BitsToFloat32(chunk[at + j]!);
    } else {
      for (let j = 0; j < d; j++) out[j] = chunk[at + j]!;
    }
  };
}
