// Admission planning: which builder a job will use (the only place that chooses, for the service and the CLI) and
// how much host and GPU memory it will need.
// Estimates are deliberately a little high: a job admitted here must never be killed for memory later.
import type { BuildSpec } from '../build-spec.js';
import type { BuilderChoice, Settings } from '../config.js';
import { JobRefusedError } from './errors.js';
import type { JobPlan } from './job.js';
import { estimateGpuBytes, gpuProblem as gpuBuildProblem } from '../builders/choose.js';
import type { GpuInfo } from '../builders/native.js';
import { resolveGpuOptions } from '../builders/gpu.js';
import type { GpuBuildOptions } from '../builders/types.js';
import { bytesPerVector } from '../vectors/types.js';

export interface PlannerOptions {
  builder: BuilderChoice;
  /** What the GPU probe found (src/builders/gpu-probe.ts). */
  gpu: GpuInfo;
  gpuMemoryLimitBytes: number;
  cpuMemoryLimitBytes: number;
  /** The GPU builder settings (degrees, k-NN algorithm); absent fields take the builder's defaults. */
  gpuOptions: GpuBuildOptions;
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

/** Visited tables: the CPU builder keeps one byte per vector per thread; this bounds the threads it counts. */
const CPU_VISITED_THREADS = 64;

/**
 * Host bytes a build needs at its peak: the vectors (as stored), the ids, the graph handed to the writer, and,
 * for the CPU builder (which reads the vectors in place), its working memory: the upper levels kept apart while
 * building, insertion order and per-node offsets, and a visited table per thread (src/native/README.md).
 */
export function estimateHostBytes(s: BuildSpec, builder: 'cpu' | 'gpu', gpuGraphDegree = 0): number {
  const n = s.docCount;
  const m = s.m;
  const vectors = n * bytesPerVector(s.dataType, s.dimension);
  const ids = 4 * n;
  // Level 0 holds 2*M slots: M = m on the CPU, half the GPU graph's degree on the GPU.
  const fileM = builder === 'gpu' ? gpuFileM(m, gpuGraphDegree) : m;
  const graph = n * 4 * graphSlotsPerNode(fileM) + 12 * n; // neighbours + levels + offsets
  const cpuWork =
    builder === 'cpu' ? n * (4 * (graphSlotsPerNode(fileM) - 2 * fileM) + 8 + CPU_VISITED_THREADS) : 0;
  return Math.ceil(vectors + ids + graph + cpuWork + WORKER_OVERHEAD_BYTES);
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

export function createPlanner(o: PlannerOptions) {
  const graphDegree = o.gpuOptions.graphDegree ?? 0;

  return function plan(s: BuildSpec): JobPlan {
    const m = s.m;
    const tooManySlots = (fileM: number) =>
      s.docCount * graphSlotsPerNode(fileM) > MAX_GRAPH_SLOTS
        ? `doc_count ${s.docCount} with m ${m} needs more than 2^32 graph slots (split the segment or lower m)`
        : null;
    const hostProblem = (bytes: number) =>
      bytes > o.cpuMemoryLimitBytes
        ? `needs ${gib(bytes)} of host memory, over CPU_MEMORY_LIMIT ${gib(o.cpuMemoryLimitBytes)}`
        : null;
    const gpuParams = {
      m,
      ...(o.gpuOptions.intermediateDegree ? { intermediateDegree: o.gpuOptions.intermediateDegree } : {}),
      ...(graphDegree ? { graphDegree } : {}),
      ...(o.gpuOptions.knnAlgorithm ? { knnAlgorithm: o.gpuOptions.knnAlgorithm } : {}),
    };
    const cpuHost = estimateHostBytes(s, 'cpu');
    const gpuHost = estimateHostBytes(s, 'gpu', graphDegree);
    const gpuBytes = estimateGpuBytes(s.docCount, s.dimension, s.dataType, gpuParams);
    const gpuProblem =
      tooManySlots(gpuFileM(m, graphDegree)) ??
      gpuBuildProblem(o.gpu, {
        count: s.docCount,
        dimension: s.dimension,
        dataType: s.dataType,
        params: gpuParams,
        memoryLimitBytes: o.gpuMemoryLimitBytes,
      }) ??
      hostProblem(gpuHost);
    const cpuProblem = tooManySlots(m) ?? hostProblem(cpuHost);

    const useGpu = (reason: string): JobPlan => ({ builder: 'gpu', hostBytes: gpuHost, gpuBytes, reason });
    const useCpu = (reason: string): JobPlan => ({ builder: 'cpu', hostBytes: cpuHost, gpuBytes: 0, reason });
    const refuse = (why: string) =>
      new JobRefusedError(
        'TOO_LARGE',
        `this build (${s.docCount} x ${s.dimension} ${s.dataType}) can never fit: ${why}`,
      );

    switch (o.builder) {
      case 'gpu':
        if (gpuProblem) throw refuse(`GPU builder: ${gpuProblem}`);
        return useGpu('the GPU builder was asked for');
      case 'cpu':
        if (cpuProblem) throw refuse(`CPU builder: ${cpuProblem}`);
        return useCpu('the CPU builder was asked for');
      case 'auto':
        if (!gpuProblem) return useGpu(`GPU builder on ${o.gpu.name || 'device 0'}: the build fits it`);
        if (!cpuProblem) return useCpu(`CPU builder because the GPU builder cannot take it: ${gpuProblem}`);
        throw refuse(`GPU builder: ${gpuProblem}; CPU builder: ${cpuProblem}`);
    }
  };
}

/** The Faiss M of a GPU graph: half its degree (level 0 holds 2*M slots). */
function gpuFileM(m: number, graphDegree: number): number {
  return Math.ceil(resolveGpuOptions(m, { graphDegree }).graphDegree / 2);
}

/** The planner the service uses, from its settings and what the GPU probe found. */
export function plannerFor(settings: Settings, gpu: GpuInfo) {
  return createPlanner({
    builder: settings.builder,
    gpu,
    gpuMemoryLimitBytes: settings.gpuMemoryLimitBytes,
    cpuMemoryLimitBytes: settings.cpuMemoryLimitBytes,
    gpuOptions: settings.gpu,
  });
}
