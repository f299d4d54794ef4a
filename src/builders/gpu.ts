// The GPU graph builder: CAGRA-style construction in our own CUDA (src/native/gpu, see its README). This layer
// owns validation and defaults (the sharp pattern); the addon gets one complete options object, runs the build
// off the JS thread and hands back the graph in Faiss's HNSW layout.
import { BuildInputError, NativeGraphBuilder, checkSeed } from './cpu.js';
import { nativeOptionsFor, type NativeBuildOptions } from './native.js';
import type { BuildParams, GpuBuildOptions, GpuTuning } from './types.js';
import type { VectorSet } from '../vectors/types.js';

/** Largest graph degree and intermediate degree the kernels take (warp lists of at most 256 candidates). */
export const MAX_GRAPH_DEGREE = 192;
export const MAX_INTERMEDIATE_DEGREE = 192;
export const KNN_ALGORITHMS = ['auto', 'exact', 'approximate'] as const;

/** A build's GPU options with every default filled in (tuning stays optional: absent = the product's). */
export type ResolvedGpuOptions = Required<Omit<GpuBuildOptions, 'tuning'>> & { tuning?: GpuTuning };

/** The GPU builder's defaults for a build with HNSW parameter m (see src/native/gpu/README.md for why). */
export function gpuDefaults(
  m: number,
): Required<Pick<GpuBuildOptions, 'intermediateDegree' | 'graphDegree'>> {
  // Capped at what the kernels take: a large m (k-NN accepts any) gives the widest graph rather than an error.
  return {
    intermediateDegree: Math.min(4 * m, MAX_INTERMEDIATE_DEGREE),
    graphDegree: Math.min(2 * m, MAX_GRAPH_DEGREE),
  };
}

/** The GPU options of one build: the build's own, then the builder's, then the defaults for m. */
export function resolveGpuOptions(
  m: number,
  own: GpuBuildOptions = {},
  builder: GpuBuildOptions = {},
): ResolvedGpuOptions {
  const pick = <K extends keyof GpuBuildOptions>(key: K) =>
    own[key] !== undefined && own[key] !== 0 ? own[key] : builder[key] !== 0 ? builder[key] : undefined;
  const d = gpuDefaults(m);
  const graphDegree = pick('graphDegree') ?? d.graphDegree;
  return {
    device: pick('device') ?? 0,
    memoryLimitBytes: pick('memoryLimitBytes') ?? 0,
    graphDegree,
    intermediateDegree: pick('intermediateDegree') ?? Math.max(d.intermediateDegree, graphDegree),
    knnAlgorithm: pick('knnAlgorithm') ?? 'auto',
    ...((own.tuning ?? builder.tuning) ? { tuning: { ...builder.tuning, ...own.tuning } } : {}),
  };
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new BuildInputError(message);
}

/** Checks resolved GPU options; messages name the setting. */
export function checkGpuOptions(g: ResolvedGpuOptions): void {
  const int = (v: number, min: number, max: number) => Number.isInteger(v) && v >= min && v <= max;
  check(int(g.device, 0, 1024), `gpu device must be an integer >= 0, got ${g.device}`);
  check(
    int(g.memoryLimitBytes, 0, Number.MAX_SAFE_INTEGER),
    `gpu memory limit must be a whole number of bytes >= 0, got ${g.memoryLimitBytes}`,
  );
  check(
    int(g.graphDegree, 1, MAX_GRAPH_DEGREE),
    `gpu graph degree must be an integer in [1, ${MAX_GRAPH_DEGREE}], got ${g.graphDegree}`,
  );
  check(
    int(g.intermediateDegree, g.graphDegree, MAX_INTERMEDIATE_DEGREE),
    `gpu intermediate degree must be an integer in [graph degree ${g.graphDegree}, ${MAX_INTERMEDIATE_DEGREE}], got ${g.intermediateDegree}`,
  );
  const t = g.tuning ?? {};
  for (const [key, max] of [
    ['ivfProbes', 1024],
    ['ivfLists', 2 ** 24],
    ['ladderLevels', 8],
    ['bridges', 16],
  ] as const) {
    const v = t[key];
    check(
      v === undefined || int(v, key === 'ivfProbes' ? 1 : 0, max),
      `gpu tuning ${key} out of range, got ${v}`,
    );
  }
  check(
    (KNN_ALGORITHMS as readonly string[]).includes(g.knnAlgorithm),
    `gpu k-NN algorithm must be one of ${KNN_ALGORITHMS.join(', ')}, got ${g.knnAlgorithm}`,
  );
}

export interface GpuBuilderOptions extends GpuBuildOptions {
  /** CPU threads for staging the upload (0 or absent: all cores). */
  readonly threads?: number;
  /** Seed of the level draw and the k-means sample; the same inputs and seed give the same graph. */
  readonly seed?: number;
}

export class GpuBuilder extends NativeGraphBuilder {
  readonly kind = 'gpu' as const;

  constructor(private readonly defaults: GpuBuilderOptions = {}) {
    super();
    checkSeed('GPU', defaults.seed);
  }

  protected nativeOptions(vectors: VectorSet, params: BuildParams): NativeBuildOptions {
    check(vectors.count >= 2, `the GPU builder needs at least 2 vectors, got ${vectors.count}`);
    const gpu = resolveGpuOptions(params.m, params.gpu, this.defaults);
    checkGpuOptions(gpu);
    const threads = params.threads || this.defaults.threads || 0;
    return { ...nativeOptionsFor(vectors, params, threads, this.defaults.seed), gpu };
  }
}
