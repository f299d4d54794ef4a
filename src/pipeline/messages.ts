// The messages between the service (parent) and a job's worker process (child), over Node's IPC channel.
import type { JobSpec } from '../build-spec.js';
import type { BuilderKind, GpuBuildOptions } from '../builders/types.js';
import type { LogLevel } from '../config.js';
import type { FormatPolicyName } from '../faiss-format/policy.js';
import type { ProgressUpdate } from '../jobs/job.js';
import type { StorageSettings } from '../storage/settings.js';
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
  | { type: 'start'; jobId: string; request: JobSpec; builder: BuilderKind; config: WorkerConfig }
  | { type: 'gpu'; device: number }
  | { type: 'cancel'; reason: string };

export type FromWorker =
  | { type: 'progress'; update: ProgressUpdate }
  | { type: 'acquire-gpu' }
  | { type: 'release-gpu' }
  | { type: 'done'; result: JobResult }
  | { type: 'failed'; message: string };
