import type { HnswGraph, HnswLayout } from '../faiss-format/hnsw-graph.js';
import type { SpaceType, VectorSet, VectorShape } from '../vectors/types.js';

export type BuilderKind = 'cpu' | 'gpu';

export interface GpuBuildOptions {
  device?: number;
  /** Upper bound on device memory for this build, in bytes (0 or absent: what the device has free). */
  memoryLimitBytes?: number;
  /** Degree of the initial k-NN graph (CAGRA's intermediate degree); absent: 4 * m. */
  intermediateDegree?: number;
  /** Neighbours per node in the final graph; absent: the GPU builder's default (see src/native/gpu/README.md). */
  graphDegree?: number;
  /** How the initial k-NN graph is found. */
  knnAlgorithm?: 'auto' | 'exact' | 'approximate';
  /** Benchmarks and tests only: the GPU builder's internal knobs (the service never sets them). */
  tuning?: GpuTuning;
}

/** The GPU builder's internal knobs (src/native/gpu/README.md); absent fields keep the product's defaults. */
export interface GpuTuning {
  /** k-means lists each vector scans on the approximate path (default 8). */
  ivfProbes?: number;
  /** k-means lists (default 0: n / 1024). */
  ivfLists?: number;
  /** Most ladder levels, 0-8 (default 8). */
  ladderLevels?: number;
  /** Long edges per node to the nearest foreign lists, 0-16 (default 4). */
  bridges?: number;
  /** Sub-stage timings to stderr. */
  verbose?: boolean;
  /** The k-NN lists' recall on 1,000 sampled rows, to stderr. */
  debugRecall?: boolean;
  /** Return the raw k-NN lists as the graph (tests compare them with exact k-NN). */
  debugKnnStage?: boolean;
}

export interface BuildParams {
  readonly spaceType: SpaceType;
  readonly m: number;
  readonly efConstruction: number;
  readonly efSearch: number;
  /** Full multi-level HNSW (for IHNf) instead of base level only (IHNc / IHc2). */
  readonly hierarchical: boolean;
  /** CPU threads; absent or 0: all cores. */
  readonly threads?: number;
  readonly gpu?: GpuBuildOptions;
}

export interface BuiltGraph {
  readonly graph: HnswGraph;
  /** Seconds per stage, for logs and benchmarks. */
  readonly stageSeconds: Readonly<Record<string, number>>;
  readonly peakDeviceBytes: number;
}

/** Progress: fraction of the build done in [0, 1] and the stage now running. */
export type BuildProgress = (fraction: number, stage: string) => void;

export interface GraphBuilder {
  readonly kind: BuilderKind;
  /** `signal`: aborting it stops the build promptly; the promise then rejects with the signal's reason. */
  build(
    vectors: VectorSet,
    params: BuildParams,
    onProgress?: BuildProgress,
    signal?: AbortSignal,
  ): Promise<BuiltGraph>;
  /**
   * The shape (M, levels, level tables) build() will give the graph for these inputs, known before building, so
   * the index file's size up to its stored vectors is too (the job copies the vectors while the graph builds).
   * Absent where a builder cannot tell in advance.
   */
  plannedLayout?(vectors: VectorShape, params: BuildParams): HnswLayout;
}
