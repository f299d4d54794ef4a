// The CPU graph builder: our HNSW construction in the native addon (src/native/cpu), in Faiss's layout. This
// layer owns validation and defaults (the sharp pattern); the addon gets one complete options object and hands
// back the graph.
import os from 'node:os';

import type { HnswLayout } from '../faiss-format/hnsw-graph.js';
import {
  type DataType,
  type SpaceType,
  type VectorSet,
  type VectorShape,
  vectorSetProblem,
} from '../vectors/types.js';
import { withEntryNode } from './entry-node.js';
import { HNSW_CLAMP } from './hnsw-params.js';
import { type NativeBuildOptions, nativeBuild, nativeOptionsFor, nativePlannedLayout } from './native.js';
import type { BuilderKind, BuildParams, BuildProgress, BuiltGraph, GraphBuilder } from './types.js';

/** A build request the builders cannot run as given; `message` says which value and why. */
export class BuildInputError extends Error {
  readonly code = 'ERR_BUILD_INPUT';
  constructor(message: string) {
    super(message);
    this.name = 'BuildInputError';
  }
}

/** Faiss HNSW stores node ids as int32. */
export const MAX_VECTORS = 2 ** 31 - 1;
/** Most CPU threads a build may ask for (BUILD_THREADS, the CLI's --threads); 0 means every core. */
export const MAX_THREADS = 4096;

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new BuildInputError(message);
}

function isIntIn(v: number, min: number, max = Number.MAX_SAFE_INTEGER): boolean {
  return Number.isInteger(v) && v >= min && v <= max;
}

/** Binary vectors are searched with hamming, every other type with l2 or inner product. */
export function checkSpaceFitsData(dataType: DataType, spaceType: SpaceType): void {
  if (dataType === 'binary')
    check(spaceType === 'hamming', `binary vectors need space_type hamming, got ${spaceType}`);
  else check(spaceType !== 'hamming', `space_type hamming needs binary vectors, got ${dataType}`);
}

/** Checks the vectors' shape (vectors/types.ts vectorSetProblem) and that Faiss HNSW can hold them. */
export function checkVectors(v: VectorSet): void {
  check(isIntIn(v.count, 1, MAX_VECTORS), `vector count must be in [1, ${MAX_VECTORS}], got ${v.count}`);
  const problem = vectorSetProblem(v);
  if (problem) throw new BuildInputError(problem);
}

/** What every builder checks before a build: the vectors' shape, the HNSW parameters, the space for the data. */
function checkBuildInput(vectors: VectorSet, params: BuildParams): void {
  checkVectors(vectors);
  checkBuildParams(params);
  checkSpaceFitsData(vectors.dataType, params.spaceType);
}

/** A builder's seed option: absent or a non-negative integer. */
export function checkSeed(builder: string, seed: number | undefined): void {
  check(
    seed === undefined || isIntIn(seed, 0),
    `${builder} builder seed must be a non-negative integer, got ${seed}`,
  );
}

/** Checks the HNSW parameters shared by every builder. */
export function checkBuildParams(p: BuildParams): void {
  // The m the builders take is decided in hnsw-params.ts (a request's m is clamped to it when its spec is made).
  const { min, max } = HNSW_CLAMP.m;
  check(isIntIn(p.m, min, max), `m must be an integer in [${min}, ${max}], got ${p.m}`);
  check(isIntIn(p.efConstruction, 1), `ef_construction must be a positive integer, got ${p.efConstruction}`);
  check(isIntIn(p.efSearch, 1), `ef_search must be a positive integer, got ${p.efSearch}`);
  if (p.threads !== undefined)
    check(
      isIntIn(p.threads, 0, MAX_THREADS),
      `threads must be an integer in [0, ${MAX_THREADS}], got ${p.threads}`,
    );
}

export interface CpuBuilderOptions {
  /** Threads when a build does not say (0 or absent: every core this process may use). */
  readonly threads?: number;
  /** Seed of the level assignment and insertion order; with one thread the same inputs give the same graph. */
  readonly seed?: number;
}

/**
 * A builder in the native addon: the shared input checks, then the build off the JS thread with the options the
 * builder makes (after its own checks), and base-level-only graphs get an entry node.
 */
export abstract class NativeGraphBuilder implements GraphBuilder {
  abstract readonly kind: BuilderKind;

  /** The addon's options for this build; throws BuildInputError for what only this builder refuses. */
  protected abstract nativeOptions(vectors: VectorSet, params: BuildParams): NativeBuildOptions;

  async build(
    vectors: VectorSet,
    params: BuildParams,
    onProgress?: BuildProgress,
    signal?: AbortSignal,
  ): Promise<BuiltGraph> {
    checkBuildInput(vectors, params);
    const built = await nativeBuild(this.kind, this.nativeOptions(vectors, params), onProgress, signal);
    return { ...built, graph: withEntryNode(built.graph, vectors) };
  }

  /** The shape build() will give the graph, without building (both builders draw every level up front). */
  plannedLayout(vectors: VectorShape, params: BuildParams): HnswLayout {
    // The count alone stands for the values: the layout depends on (count, m, seed), not on the vectors.
    const options = this.nativeOptions({ ...vectors, chunks: [] }, params);
    return nativePlannedLayout(this.kind, { ...options, count: vectors.count });
  }
}

export class CpuBuilder extends NativeGraphBuilder {
  readonly kind = 'cpu' as const;

  constructor(private readonly defaults: CpuBuilderOptions = {}) {
    super();
    const { threads, seed } = defaults;
    check(
      threads === undefined || isIntIn(threads, 0, MAX_THREADS),
      `CPU builder threads must be an integer in [0, ${MAX_THREADS}], got ${threads}`,
    );
    checkSeed('CPU', seed);
  }

  protected nativeOptions(vectors: VectorSet, params: BuildParams): NativeBuildOptions {
    return nativeOptionsFor(vectors, params, this.threads(params), this.defaults.seed);
  }

  private threads(params: BuildParams): number {
    if (params.threads) return params.threads;
    if (this.defaults.threads) return this.defaults.threads;
    return os.availableParallelism();
  }
}
