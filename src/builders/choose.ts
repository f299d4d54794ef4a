// Whether the GPU builder can run a build, and how much GPU memory it takes. The choice between the builders is
// made in one place, src/jobs/plan.ts (service and CLI).
// estimateGpuBytes mirrors the GPU builder's own peak estimate (src/native/gpu/builder.cpp, estimatePeak) plus
// its score tiles and CUDA/cuBLAS overhead; src/native/gpu/README.md documents the formula.
import type { DataType } from '../vectors/types.js';
import { MAX_INTERMEDIATE_DEGREE, gpuDefaults } from './gpu.js';
import type { GpuInfo } from './native.js';

const MIB = 2 ** 20;
const GIB = 2 ** 30;
/** Score tiles (at most 1 GiB), the CUDA context's growth and cuBLAS/CUB workspaces. */
const GPU_FIXED_BYTES = 1.5 * GIB;
const LADDER_PER_LEVEL = 8;
const MAX_LADDER_LEVELS = 8;
/** Above this many multiply-adds the all-pairs k-NN is replaced by the k-means lists (the 'auto' choice). */
const EXACT_KNN_MAX_MACS = 8e12;

export interface GpuEstimateParams {
  readonly m: number;
  readonly intermediateDegree?: number;
  readonly graphDegree?: number;
  readonly knnAlgorithm?: 'auto' | 'exact' | 'approximate';
}

const pow2Width = (k: number) => Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(1, k))));

/**
 * Device bytes a GPU build of `count` vectors of `dimension` (bits for binary) needs at its peak:
 *   rows     n (2 dp + 4)                       fp16 rows (dp = dimension rounded up to 8) and squared norms
 *   knn      8 n w_k                            k-NN lists (key + id), w_k = power of two >= k
 *   ivf      128 n + 512 MiB                    probes and batch buffers (approximate path only)
 *   ladder   64 n L + 256 n + n/16 (2 dp + 8)   8 long-range candidates per upper level, one level's lists
 *   cand     4 n w_c                            merged candidates, w_c = power of two >= k + 8 L
 *   reverse  36 n deg + 40 n                    bridges, reverse-edge sort (keys, values, double buffers)
 * peak = rows + max(knn + ivf, knn + ladder + cand, cand + reverse) + 256 MiB, plus 1.5 GiB of tiles and
 * CUDA/cuBLAS overhead. L = the sparse upper levels (n / M^l >= 2 and M^l >= 64, at most 8).
 */
export function estimateGpuBytes(
  count: number,
  dimension: number,
  dataType: DataType,
  params: GpuEstimateParams,
): number {
  void dataType; // every type is computed on as fp16 rows of `dimension` elements (binary: one per bit)
  const n = count;
  const dp = Math.ceil(dimension / 8) * 8;
  const defaults = gpuDefaults(params.m);
  const requested = params.graphDegree || defaults.graphDegree;
  const k = Math.max(
    1,
    Math.min(
      Math.max(params.intermediateDegree || defaults.intermediateDegree, requested),
      MAX_INTERMEDIATE_DEGREE,
      n - 1,
    ),
  );
  const degree = Math.min(requested, k);
  const M = Math.max(2, Math.ceil(requested / 2));
  let levels = 0;
  for (let l = 1; n / M ** l >= 2 && levels < MAX_LADDER_LEVELS; l++)
    if (M ** l >= 64 && k + (levels + 1) * LADDER_PER_LEVEL <= 256) levels++;
  const approximate =
    params.knnAlgorithm === 'approximate' ||
    ((params.knnAlgorithm ?? 'auto') === 'auto' && n * n * dp > EXACT_KNN_MAX_MACS);
  const rows = n * (2 * dp + 4);
  const knn = 8 * n * pow2Width(k);
  const ivf = approximate ? 128 * n + 512 * MIB : 0;
  const ladder = 64 * n * levels + 256 * n + (n / 16) * (2 * dp + 8);
  const cand = 4 * n * pow2Width(k + LADDER_PER_LEVEL * levels);
  const reverse = 36 * n * degree + 40 * n;
  const peak = rows + Math.max(knn + ivf, knn + ladder + cand, cand + reverse) + 256 * MIB;
  return Math.ceil(peak + GPU_FIXED_BYTES);
}

/** GPUs the GPU builder can use, from gpuInfo() (0 when the addon lacks the GPU builder or sees no device). */
export function usableGpuCount(info: GpuInfo): number {
  return info.compiled && !info.error ? info.deviceCount : 0;
}

export interface ChooseInput {
  readonly count: number;
  readonly dimension: number;
  readonly dataType: DataType;
  readonly params: GpuEstimateParams;
  /** Device memory one build may use (GPU_MEMORY_LIMIT); absent: the device's size. */
  readonly memoryLimitBytes?: number;
}

const gib = (b: number) => `${(b / GIB).toFixed(2)} GiB`;

/** Why a GPU build cannot run, or null when it can. */
export function gpuProblem(info: GpuInfo, input: ChooseInput): string | null {
  if (!info.compiled) return info.error ?? 'the native addon was built without the GPU builder';
  if (usableGpuCount(info) === 0) return info.error ?? 'no CUDA device';
  if (input.count < 2) return `the GPU builder needs at least 2 vectors, got ${input.count}`;
  const need = estimateGpuBytes(input.count, input.dimension, input.dataType, input.params);
  const limit = Math.min(input.memoryLimitBytes ?? Infinity, info.totalBytes);
  if (need > limit) return `needs about ${gib(need)} of GPU memory, over the ${gib(limit)} allowed`;
  return null;
}
