// Admission planning: which builder a job will use and how much host and GPU memory it will need.
// Estimates are deliberately a little high: a job admitted here must never be killed for memory later.
import type { BuildRequest } from '../api/schemas.js';
import type { BuilderChoice, Settings } from '../config.js';
import { JobRefusedError } from '../jobs/errors.js';
import type { JobPlan } from '../jobs/job.js';
import { estimateGpuBytes } from '../builders/choose.js';
import { resolveGpuOptions } from '../builders/gpu.js';
import type { GpuBuildOptions } from '../builders/types.js';
import { bytesPerVector } from '../vectors/types.js';

export interface GpuCapacity {
  /** Devices the GPU builder can use (0 = none). */
  deviceCount: number;
  /** Memory of the smallest device, in bytes. */
  deviceBytes: number;
  /** Why there is no usable GPU, for logs. */
  unavailableReason: string | null;
}

export interface PlannerOptions {
  builder: BuilderChoice;
  gpu: GpuCapacity;
  gpuMemoryLimitBytes: number;
  cpuMemoryLimitBytes: number;
  /** GPU device memory a build needs (from the GPU builder's own estimate). */
  estimateGpuBytes: (request: BuildRequest) => number;
  /** The GPU graph degree setting (0 = the builder's default), for the host estimate. */
  gpuGraphDegree?: number;
}

const MIB = 2 ** 20;
/** The worker process itself, its download buffers and the writer's pieces. */
const WORKER_OVERHEAD_BYTES = 256 * MIB;
/** Node 20 typed arrays hold at most 2^32 elements: the graph's neighbour array must fit in one. */
const MAX_GRAPH_SLOTS = 2 ** 32 - 1;

/** Neighbour slots per node in the written graph (Faiss: 2*M on level 0, M per upper level, ~1/(M-1) extra). */
function graphSlotsPerNode(M: number): number {
  return 2 * M + M / Math.max(1, M - 1);
}

/**
 * Host bytes a build needs at its peak: the vectors (as stored), the ids, the graph handed to the writer, and,
 * for the CPU builder, Faiss's own float copy of the vectors (byte and half_float data are widened to float).
 */
export function estimateHostBytes(r: BuildRequest, builder: 'cpu' | 'gpu', gpuGraphDegree = 0): number {
  const n = r.doc_count;
  const m = r.index_parameters.algorithm_parameters.m;
  const vectors = n * bytesPerVector(r.data_type, r.dimension);
  const ids = 4 * n;
  // Level 0 holds 2*M slots: M = m on the CPU, half the GPU graph's degree on the GPU.
  const fileM =
    builder === 'gpu' ? Math.ceil(resolveGpuOptions(m, { graphDegree: gpuGraphDegree }).graphDegree / 2) : m;
  const graph = n * 4 * graphSlotsPerNode(fileM) + 12 * n; // neighbours + levels + offsets
  const faissCopy = builder === 'cpu' && r.data_type !== 'binary' ? n * r.dimension * 4 : 0;
  return Math.ceil(vectors + ids + graph + faissCopy + WORKER_OVERHEAD_BYTES);
}

/** Device bytes a GPU build of this request needs (the GPU builder's own estimate, src/builders/choose.ts). */
export function gpuBytesFor(gpu: GpuBuildOptions = {}): (r: BuildRequest) => number {
  return (r) =>
    estimateGpuBytes(r.doc_count, r.dimension, r.data_type, {
      m: r.index_parameters.algorithm_parameters.m,
      ...(gpu.intermediateDegree ? { intermediateDegree: gpu.intermediateDegree } : {}),
      ...(gpu.graphDegree ? { graphDegree: gpu.graphDegree } : {}),
      ...(gpu.knnAlgorithm ? { knnAlgorithm: gpu.knnAlgorithm } : {}),
    });
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

export function createPlanner(o: PlannerOptions) {
  const deviceLimit =
    o.gpu.deviceCount > 0 ? Math.min(o.gpuMemoryLimitBytes, o.gpu.deviceBytes) : o.gpuMemoryLimitBytes;

  return function plan(r: BuildRequest): JobPlan {
    const m = r.index_parameters.algorithm_parameters.m;
    const tooManySlots = (fileM: number) =>
      r.doc_count * graphSlotsPerNode(fileM) > MAX_GRAPH_SLOTS
        ? `doc_count ${r.doc_count} with m ${m} needs more than 2^32 graph slots (split the segment or lower m)`
        : null;
    const cpuHost = estimateHostBytes(r, 'cpu');
    const gpuHost = estimateHostBytes(r, 'gpu', o.gpuGraphDegree ?? 0);
    const gpuBytes = o.estimateGpuBytes(r);
    const gpuProblem =
      tooManySlots(2 * m) ??
      (o.gpu.deviceCount === 0
        ? (o.gpu.unavailableReason ?? 'no GPU')
        : gpuBytes > deviceLimit
          ? `needs ${gib(gpuBytes)} of GPU memory, over the limit of ${gib(deviceLimit)} (GPU_MEMORY_LIMIT or device size)`
          : gpuHost > o.cpuMemoryLimitBytes
            ? `needs ${gib(gpuHost)} of host memory, over CPU_MEMORY_LIMIT ${gib(o.cpuMemoryLimitBytes)}`
            : null);
    const cpuProblem =
      tooManySlots(m) ??
      (cpuHost > o.cpuMemoryLimitBytes
        ? `needs ${gib(cpuHost)} of host memory, over CPU_MEMORY_LIMIT ${gib(o.cpuMemoryLimitBytes)}`
        : null);

    const useGpu = (reason: string): JobPlan => ({ builder: 'gpu', hostBytes: gpuHost, gpuBytes, reason });
    const useCpu = (reason: string): JobPlan => ({ builder: 'cpu', hostBytes: cpuHost, gpuBytes: 0, reason });
    const refuse = (why: string) =>
      new JobRefusedError(
        'TOO_LARGE',
        `this build (${r.doc_count} x ${r.dimension} ${r.data_type}) can never fit: ${why}`,
      );

    switch (o.builder) {
      case 'gpu':
        if (gpuProblem) throw refuse(`GPU builder: ${gpuProblem}`);
        return useGpu('BUILDER=gpu');
      case 'cpu':
        if (cpuProblem) throw refuse(`CPU builder: ${cpuProblem}`);
        return useCpu('BUILDER=cpu');
      case 'auto':
        if (!gpuProblem) return useGpu('a GPU is available and the build fits it');
        if (!cpuProblem) return useCpu(`CPU builder because the GPU builder cannot take it: ${gpuProblem}`);
        throw refuse(`GPU builder: ${gpuProblem}; CPU builder: ${cpuProblem}`);
    }
  };
}

/** The planner the service uses, from its settings and the GPUs it found. */
export function plannerFor(settings: Settings, gpu: GpuCapacity) {
  return createPlanner({
    builder: settings.builder,
    gpu,
    gpuMemoryLimitBytes: settings.gpuMemoryLimitBytes,
    cpuMemoryLimitBytes: settings.cpuMemoryLimitBytes,
    estimateGpuBytes: gpuBytesFor(settings.gpu),
    gpuGraphDegree: settings.gpu.graphDegree,
  });
}
