/**
 * An HNSW graph in Faiss's own layout (README.md, "Byte layout"), as the builders hand it to the writer.
 * Node i's links at level l are neighbors[offset(i) + cum[l] .. offset(i) + cum[l+1]), where
 * offset(i) = sum over j < i of cum[levels[j]]; unused slots are -1, valid ids first.
 */
export interface HnswGraph {
  /** Faiss M: level 0 holds 2*M slots per node, every upper level M. */
  readonly M: number;
  /** Per node: its top level + 1. Absent: every node on level 1 only (base level only, CAGRA-style). */
  readonly levels?: Int32Array;
  readonly neighbors: Int32Array;
  /** A node of the top level; -1 only for base-level-only graphs. */
  readonly entryPoint: number;
  /** levels[entryPoint] - 1; -1 only for base-level-only graphs. */
  readonly maxLevel: number;
  /** Faiss's level probabilities; absent: Faiss's default for M. */
  readonly assignProbas?: Float64Array;
  /** [0, 2M, 3M, ...]; absent: Faiss's default for M and the number of levels. */
  readonly cumNeighborPerLevel?: Int32Array;
}

/**
 * An HnswGraph's shape without its links: what decides the size of every graph section of the file. Builders
 * that draw levels up front give it before building (GraphBuilder.plannedLayout).
 */
export type HnswLayout = Pick<HnswGraph, 'M' | 'levels' | 'assignProbas' | 'cumNeighborPerLevel'>;
