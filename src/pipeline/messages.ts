// The messages between the service (parent, src/jobs/process-build.ts) and a build worker process (child,
// worker.ts), over Node's IPC channel. A worker runs one job at a time: 'start' ... 'done' | 'failed', then
// 'ready' once it has cleaned up; the service ends a worker by closing the channel.
import type { JobSpec } from '../build-spec.js';
import type { BuilderKind, GpuBuildOptions } from '../builders/types.js';
import type { LogLevel } from '../config.js';
import type { FormatPolicyName } from '../faiss-format/policy.js';
import type { ProgressUpdate } from '../jobs/job.js';
import type { StorageSettings } from '../storage/settings.js';
import type { MultipartEvent } from '../storage/types.js';
import type { JobResult } from './run-job.js';

/** What a worker needs besides the job's spec. In the service, S3 credentials come from the inherited environment. */
export interface WorkerConfig {
  storage: Partial<StorageSettings>;
  formatPolicy: FormatPolicyName;
  /** CPU builder threads (0 = all cores). */
  threads: number;
  gpu: GpuBuildOptions;
  spoolDir?: string;
  /** Default true: see PipelineDeps.copyStoredVectors. */
  copyStoredVectors?: boolean;
  logLevel: LogLevel;
}

export type ToWorker =
  /** Make these GPUs ready for builds now (CUDA context, cuBLAS handle, pinned buffers): warm workers only. */
  | { type: 'warm-up'; gpus: number[] }
  | { type: 'start'; jobId: string; request: JobSpec; builder: BuilderKind; config: WorkerConfig }
  | { type: 'gpu'; device: number }
  | { type: 'cancel'; reason: string };

export type FromWorker =
  | { type: 'progress'; update: ProgressUpdate }
  | { type: 'acquire-gpu' }
  | { type: 'release-gpu' }
  | { type: 'done'; result: JobResult }
  | { type: 'failed'; message: string }
  /** After 'done' or 'failed': cleaned up (gc), ready for the next job; its resident memory now. */
  | { type: 'ready'; rssBytes: number }
  /**
   * The job's index upload opened (or closed) an S3 multipart upload: if the worker dies without reporting, the
   * service aborts the ones still open.
   */
  | { type: 'multipart'; event: MultipartEvent }
  /** The outcome of one GPU of 'warm-up': seconds it took, or why it failed. */
  | { type: 'gpu-warm-up'; device: number; seconds?: number; error?: string };
