// Admission planning: which builder a job will use (the only place that chooses, for the service and the CLI) and
// how much host and GPU memory it will need.
// Estimates are deliberately a little high: a job admitted here must never be killed for memory later.
import os from 'node:os';

import type { BuildSpec } from '../build-spec.js';
import type { BuilderChoice, Settings } from '../config.js';
import { JobRefusedError } from './errors.js';
import type { JobPlan } from './job.js';
import { estimateGpuBytes, gpuProblem as gpuBuildProblem } from '../builders/choose.js';
import type { GpuInfo } from '../builders/native.js';
import { resolveGpuOptions } from '../builders/gpu.js';
import type { GpuBuildOptions } from '../builders/types.js';
import { STAGING_BYTES } from '../storage/local.js';
import { writeBufferBytes } from '../storage/settings.js';
import { bytesPerVector } from '../vectors/types.js';

export interface PlannerOptions {
  builder: BuilderChoice;
  /** What the GPU probe found (src/builders/gpu-probe.ts). */
  gpu: GpuInfo;
  gpuMemoryLimitBytes: number;
  cpuMemoryLimitBytes: number;
  /** The GPU builder settings (degrees, k-NN algorithm); absent fields take the builder's defaults. */
  gpuOptions: GpuBuildOptions;
  /** CPU builder threads (0 or absent: every core): each costs a byte per vector. */
  buildThreads?: number;
  /** Host bytes the object store holds per upload (writeBufferBytes). */
  transferBytes?: number;
}

const MIB = 2 ** 20;
/** Node 20 typed arrays hold at most 2^32 elements: the graph's neighbour array must fit in one. */
const MAX_GRAPH_SLOTS = 2 ** 32 - 1;

// Host memory of one job, from what the pipeline and the builders allocate (src/native/README.md, "Memory"; the
// GPU builder's layOut); test/pipeline/host-memory.test.ts measures real jobs' peak RSS against this estimate.
/** The job's worker process before its job: Node, our code and the addon (measured 90-110 MiB). */
export const WORKER_PROCESS_BYTES = 128 * MIB;
/**
 * Buffers that live until V8 collects them: the writer's computed pieces (int8 codes, offsets, int64 ids) and the
 * downloads' socket chunks. V8 collects once they pass its external-memory limit, so they stay bounded whatever the
 * job's size (measured: at most 82 MiB while writing a 1.6M x 128 int8 index of 421 MiB).
 */
export const UNCOLLECTED_BYTES = 128 * MIB;
/**
 * Reading a `.knnvec` that is converted on the way in (half_float: fp32 on the wire, fp16 in memory) goes through two
 * staging buffers of up to 64 MiB (src/storage/local.ts STAGING_BYTES; S3's part buffers are in transferBytes).
 */
export function readStagingBytes(dataType: BuildSpec['dataType']): number {
  return dataType === 'half_float' ? 2 * STAGING_BYTES : 0;
}
/**
 * The GPU builder's host side besides the graph: two 64 MiB pinned upload buffers, the CUDA runtime and cuBLAS
 * (`scripts/gpu-check.sh host-memory` measures it on the GPU machine).
 */
export const GPU_RUNTIME_BYTES = 512 * MIB;

/** Neighbour slots per node in the written graph (Faiss: 2*M on level 0, M per upper level, ~1/(M-1) extra). */
function graphSlotsPerNode(M: number): number {
  return 2 * M + upperSlotsPerNode(M);
}

/** Upper-level slots per node: M on each level above 0, a node reaching level l with probability M^-l. */
function upperSlotsPerNode(M: number): number {
  return M / Math.max(1, M - 1);
}

export interface HostEstimateOptions {
  /** The GPU graph's degree (0 or absent: the GPU builder's default for m). */
  gpuGraphDegree?: number;
  /** CPU builder threads, each with a visited table of one byte per vector (0 or absent: every core). */
  threads?: number;
  /** Bytes the object store holds per upload (S3's part buffers; src/storage/settings.ts writeBufferBytes). */
  transferBytes?: number;
}

/**
 * Host bytes a job needs at its peak: the vectors (as stored in memory), ids and (byte) the vectors' int8 codes,
 * then the builder's peak:
 * - CPU (reads the vectors in place): the graph in its final array, the upper levels kept apart while building,
 *   levels, per-node upper offsets, insertion order, one pointer per vector (vectors in several chunks) and a
 *   visited table per thread (src/native/cpu/hnsw_builder.cpp Layout, vector_table.h);
 * - GPU: when laying out the file's graph, the downloaded base graph (degree slots per node) next to the file's
 *   graph, its levels and int64 offsets, and the level draw (src/native/gpu/builder.cpp layOut);
 * plus the worker process, what waits for V8's collector, the conversion's read staging, the store's upload buffers and (GPU) the CUDA runtime.
 * The writer streams the file in pieces and copies nothing the size of the vectors.
 */
export function estimateHostBytes(s: BuildSpec, builder: 'cpu' | 'gpu', o: HostEstimateOptions = {}): number {
  const n = s.docCount;
  const m = s.m;
  // vectors + int32 ids (+ byte: their int8 codes, made while the graph builds to be sent meanwhile)
  const data = n * (bytesPerVector(s.dataType, s.dimension) + 4 + int8CodeBytes(s));
  const fixed =
    WORKER_PROCESS_BYTES + UNCOLLECTED_BYTES + readStagingBytes(s.dataType) + (o.transferBytes ?? 0);
  if (builder === 'cpu') {
    const threads = o.threads || os.availableParallelism();
    // graph + upper levels apart + levels (4) + upper offsets (8) + order (4) + vector pointers (8) + visited
    const perVector = 4 * graphSlotsPerNode(m) + 4 * upperSlotsPerNode(m) + 24 + threads;
    return Math.ceil(data + n * perVector + fixed);
  }
  const degree = gpuDegree(m, o.gpuGraphDegree ?? 0);
  const fileM = Math.ceil(degree / 2); // level 0 holds 2*M slots
  // file graph + base graph + levels (4) + offsets (8) + level draw (1) + upper levels and their ids
  const perVector =
    4 * graphSlotsPerNode(fileM) + 4 * degree + 13 + 4 * upperSlotsPerNode(fileM) * (1 + 1 / fileM);
  return Math.ceil(data + n * perVector + fixed + GPU_RUNTIME_BYTES);
}

/** Bytes per vector of the int8 codes a byte job makes before its upload (src/pipeline/run-job.ts startEarlySend). */
function int8CodeBytes(s: BuildSpec): number {
  return s.dataType === 'byte' && !s.skipStoredVectors ? s.dimension : 0;
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
    const hostOptions = { threads: o.buildThreads ?? 0, transferBytes: o.transferBytes ?? 0 };
    const cpuHost = estimateHostBytes(s, 'cpu', hostOptions);
    const gpuHost = estimateHostBytes(s, 'gpu', { ...hostOptions, gpuGraphDegree: graphDegree });
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

/** The GPU graph's degree for m and the configured degree (0: the builder's default). */
function gpuDegree(m: number, graphDegree: number): number {
  return resolveGpuOptions(m, { graphDegree }).graphDegree;
}

/** The Faiss M of a GPU graph: half its degree (level 0 holds 2*M slots). */
function gpuFileM(m: number, graphDegree: number): number {
  return Math.ceil(gpuDegree(m, graphDegree) / 2);
}

/** The planner the service uses, from its settings and what the GPU probe found. */
export function plannerFor(settings: Settings, gpu: GpuInfo) {
  return createPlanner({
    builder: settings.builder,
    gpu,
    gpuMemoryLimitBytes: settings.gpuMemoryLimitBytes,
    cpuMemoryLimitBytes: settings.cpuMemoryLimitBytes,
    gpuOptions: settings.gpu,
    buildThreads: settings.buildThreads,
    transferBytes: writeBufferBytes(settings.storage),
  });
}
