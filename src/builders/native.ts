// The only module that loads the native addon (src/native). It turns the typed options of a build into the
// addon's options object and the addon's result into an HnswGraph; policy (which builder, defaults) stays in TS.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import type { HnswGraph, HnswLayout } from '../faiss-format/hnsw-graph.js';
import type { DataType, SpaceType, VectorArray, VectorSet } from '../vectors/types.js';
import type { BuilderKind, BuildParams, BuiltGraph, GpuTuning } from './types.js';

/** The options object the addon's build() takes (checked again natively). */
export interface NativeBuildOptions {
  dataType: DataType;
  metric: SpaceType;
  dimension: number;
  chunks: readonly VectorArray[];
  /** plannedLayout only: the vector count when `chunks` is empty (the vectors have not arrived yet). */
  count?: number;
  m: number;
  efConstruction: number;
  efSearch: number;
  hierarchical: boolean;
  threads?: number;
  /** CPU builder: the portable distance kernels even where AVX2 ones run (tests compare both). */
  portableKernels?: boolean;
  seed?: number;
  /** Cancel flag: the builder stops soon after element 0 becomes non-zero (set from this thread). */
  cancel?: Int32Array;
  gpu?: {
    device?: number;
    memoryLimitBytes?: number;
    intermediateDegree?: number;
    graphDegree?: number;
    knnAlgorithm?: string;
    tuning?: GpuTuning;
  };
}

/** Options of the addon's file transfers (readFileRange, copyFileRange). */
interface NativeTransferOptions {
  /** Names the file(s) in error messages. */
  label?: string;
  threads?: number;
  chunkBytes?: number;
  /** Element 0 non-zero: stop between chunks (the promise settles once every thread has stopped). */
  cancel?: Int32Array;
}

interface NativeGraph {
  M: number;
  levels: Int32Array;
  neighbors: Int32Array;
  entryPoint: number;
  maxLevel: number;
  assignProbas: Float64Array;
  cumNeighborPerLevel: Int32Array;
  stageSeconds: Record<string, number>;
  peakDeviceBytes: number;
}

export interface GpuInfo {
  /** The addon was compiled with the GPU builder. */
  compiled: boolean;
  deviceCount: number;
  name: string;
  totalBytes: number;
  freeBytes: number;
  computeCapability: string;
  /** Why no GPU is usable, when deviceCount is 0. */
  error: string | null;
}

interface NativeAddon {
  build(
    builder: BuilderKind,
    options: NativeBuildOptions,
    onProgress?: (fraction: number, stage: string) => void,
  ): Promise<NativeGraph>;
  gpuInfo(device?: number): GpuInfo;
  /** Creates the device's CUDA context, cuBLAS handle and pinned staging buffers for this process; seconds taken. */
  gpuWarmUp(device: number): Promise<number>;
  /** The shape build() returns for the same options, without building (host code, no GPU needed). */
  plannedLayout(
    builder: BuilderKind,
    options: NativeBuildOptions,
  ): Pick<NativeGraph, 'M' | 'levels' | 'assignProbas' | 'cumNeighborPerLevel'>;
  /** Ends this process graceMs after `parentPid` stops being its parent (false: it already has). */
  exitWithParent(parentPid: number, graceMs: number): boolean;
  withGpu: boolean;
  /**
   * A file range copied off the JS thread by several threads (reflink, else copy_file_range, else pread + pwrite;
   * src/native/io/copy_range.h); rejects with an Error whose `code` is the errno name.
   */
  copyFileRange(
    srcFd: number,
    srcOffset: number,
    dstFd: number,
    dstOffset: number,
    length: number,
    options?: NativeTransferOptions & { reflink?: boolean; copyFileRange?: boolean; writeback?: boolean },
    onProgress?: (bytesDone: number, bytesTotal: number) => void,
  ): Promise<{ bytes: number; method: 'reflink' | 'copy_file_range' | 'pread/pwrite'; reason?: string }>;
  /**
   * A file range read into `targets` (in order) by several threads with large preads (src/native/io/read_range.h);
   * resolves with the bytes read, rejects with an Error whose `code` is the errno name (ESHRANK: file too short).
   */
  readFileRange(
    fd: number,
    offset: number,
    targets: readonly Uint8Array[],
    options?: NativeTransferOptions & { hugePages?: boolean; direct?: boolean },
    onProgress?: (bytesDone: number, bytesTotal: number) => void,
  ): Promise<number>;
  /** float32 bytes -> fp16 bytes (round to nearest even), F16C and threads where available. */
  f32ToF16(input: Uint8Array, output: Uint8Array): void;
  /** int8 -> Faiss QT_8bit_direct_signed codes (x ^ 0x80). */
  int8Codes(input: Uint8Array, output: Uint8Array): void;
  /** src/vectors/scan.ts's scans, on several threads (src/native/convert). */
  findFloat32AtLeast(values: Uint8Array, from: number, biasedExponent: number): number;
  findNonFiniteFloat16(values: Uint8Array): number;
}

const ROOT = path.resolve(import.meta.dirname, '../..');
// cmake-js puts the addon in build/native/Release; a plain cmake build (the GPU machine) in build/native.
const CANDIDATES = [
  process.env.KNN_NATIVE_ADDON,
  path.join(ROOT, 'build/native/Release/knn_native.node'),
  path.join(ROOT, 'build/native/knn_native.node'),
  // from dist/src/builders
  path.resolve(ROOT, '../build/native/Release/knn_native.node'),
].filter((p): p is string => !!p);

let addon: NativeAddon | undefined;

/** The addon's file (without loading it); throws an error that says how to build it when it is missing. */
export function addonFile(): string {
  const file = CANDIDATES.find((p) => existsSync(p));
  if (!file) {
    throw new Error(
      `native addon not found (looked in ${CANDIDATES.join(', ')}): run scripts/setup.sh or npm run build:native`,
    );
  }
  return file;
}

/** Loads the addon once. */
export function loadAddon(): NativeAddon {
  addon ??= createRequire(import.meta.url)(addonFile()) as NativeAddon;
  return addon;
}

/** The addon, or undefined where it is not built or cannot load (callers with a JS fallback). */
export function optionalAddon(): NativeAddon | undefined {
  try {
    return loadAddon();
  } catch {
    return undefined;
  }
}

/**
 * Runs one build in the addon (off the JS thread) and converts the result. When `signal` aborts, the build
 * stops at its next check (the CPU builder: within one insertion per thread) and the promise rejects with
 * the signal's reason.
 */
export async function nativeBuild(
  builder: BuilderKind,
  options: NativeBuildOptions,
  onProgress?: (fraction: number, stage: string) => void,
  signal?: AbortSignal,
): Promise<BuiltGraph> {
  signal?.throwIfAborted();
  const cancel = new Int32Array(1);
  const onAbort = () => Atomics.store(cancel, 0, 1);
  signal?.addEventListener('abort', onAbort, { once: true });
  let g: NativeGraph;
  try {
    g = await loadAddon().build(builder, { ...options, cancel }, onProgress);
  } catch (e) {
    signal?.throwIfAborted();
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const graph: HnswGraph = {
    ...toLayout(g),
    neighbors: g.neighbors,
    entryPoint: g.entryPoint,
    maxLevel: g.maxLevel,
  };
  return { graph, stageSeconds: g.stageSeconds, peakDeviceBytes: g.peakDeviceBytes };
}

/**
 * The graph's shape (M, levels, level tables) that nativeBuild() with the same options returns, computed without
 * building: both builders draw every node's level up front from (count, m, seed) (src/native/layout/levels.h).
 */
export function nativePlannedLayout(builder: BuilderKind, options: NativeBuildOptions): HnswLayout {
  return toLayout(loadAddon().plannedLayout(builder, options));
}

function toLayout(g: Pick<NativeGraph, 'M' | 'levels' | 'assignProbas' | 'cumNeighborPerLevel'>): HnswLayout {
  return {
    M: g.M,
    ...(g.levels.length > 0 ? { levels: g.levels } : {}),
    ...(g.assignProbas.length > 0 ? { assignProbas: g.assignProbas } : {}),
    ...(g.cumNeighborPerLevel.length > 0 ? { cumNeighborPerLevel: g.cumNeighborPerLevel } : {}),
  };
}

/** What the addon knows about GPU `device`; never throws (a missing addon reads as no GPU). */
export function gpuInfo(device = 0): GpuInfo {
  try {
    return loadAddon().gpuInfo(device);
  } catch (e) {
    return noGpu((e as Error).message);
  }
}

/**
 * Makes GPU `device` ready for builds in this process (src/native/gpu/warm.h): the CUDA context, a stream with
 * its cuBLAS handle and the upload's pinned staging buffers are created now and reused by every later build on
 * it. Resolves with the seconds it took; rejects with an Error naming the problem (no GPU builder compiled in, no
 * such device, a device that fails).
 */
export function gpuWarmUp(device: number): Promise<number> {
  return loadAddon().gpuWarmUp(device);
}

/**
 * Makes this process end `graceMs` after its parent dies, even while the JS thread or a native build is busy
 * (a native watchdog thread). False when the parent is already gone.
 */
export function exitWithParent(parentPid: number, graceMs: number): boolean {
  return loadAddon().exitWithParent(parentPid, graceMs);
}

/** GpuInfo for "no usable GPU", with the reason. */
export function noGpu(error: string): GpuInfo {
  return {
    compiled: false,
    deviceCount: 0,
    name: '',
    totalBytes: 0,
    freeBytes: 0,
    computeCapability: '0.0',
    error,
  };
}

/** The options every build passes, from the vectors and the build's parameters. */
export function nativeOptionsFor(
  vectors: VectorSet,
  params: BuildParams,
  threads: number,
  seed: number | undefined,
): NativeBuildOptions {
  return {
    dataType: vectors.dataType,
    metric: params.spaceType,
    dimension: vectors.dimension,
    chunks: vectors.chunks,
    m: params.m,
    efConstruction: params.efConstruction,
    efSearch: params.efSearch,
    hierarchical: params.hierarchical,
    threads,
    ...(seed !== undefined ? { seed } : {}),
  };
}
