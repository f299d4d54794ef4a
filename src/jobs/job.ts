// A build job as the service tracks it: what was asked (a JobSpec), the k-NN-visible status, and our finer phase.
// The HTTP bodies (/_status, /_jobs) are rendered from this state by the API (api/status.ts, api/jobs.ts).
import { createHash } from 'node:crypto';

import type { JobSpec } from '../build-spec.js';
import type { BuilderKind } from '../builders/types.js';

/** The status k-NN sees. */
export const TASK_STATUSES = ['RUNNING_INDEX_BUILD', 'COMPLETED_INDEX_BUILD', 'FAILED_INDEX_BUILD'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Our finer view of where a job is (/_jobs, metrics). */
export const JOB_PHASES = [
  'queued',
  'downloading',
  'building',
  'writing',
  'uploading',
  'completed',
  'failed',
] as const;
export type JobPhase = (typeof JOB_PHASES)[number];

/**
 * The job id: a client's retry (same vector_path and tenant) finds the same job. The pair is hashed as JSON, an
 * unambiguous encoding: the reference builder's `${vector_path}-${tenant_id}` gives `a.knnvec-b` + `c` and
 * `a.knnvec` + `b-c` one id (and one job).
 */
export function jobIdFor(vectorPath: string, tenantId: string): string {
  return createHash('sha256')
    .update(JSON.stringify([vectorPath, tenantId]))
    .digest('hex');
}

/** What a job is expected to need, decided when it is admitted. */
export interface JobPlan {
  readonly builder: BuilderKind;
  readonly hostBytes: number;
  readonly gpuBytes: number;
  /** Why this builder was chosen (for logs). */
  readonly reason: string;
}

/** What k-NN polls for: its status, and the file name or the error once finished. */
export interface JobStatus {
  readonly status: TaskStatus;
  readonly fileName: string | null;
  readonly errorMessage: string | null;
}

/** A job's state at one moment, as either backend knows it (the API renders /_jobs from it). */
export interface JobView extends JobStatus {
  readonly id: string;
  readonly phase: JobPhase;
  readonly spec: JobSpec;
  /** Null until the job starts. */
  readonly builder: BuilderKind | null;
  /** Fraction of the current phase done, 0..1. */
  readonly progress: number;
  readonly bytesDownloaded: number;
  readonly bytesUploaded: number;
  readonly bytesCopied: number;
  readonly uploadPath: { readonly path: 'copy' | 'stream'; readonly reason?: string } | null;
  /** Phase times and the early copy, once the job has uploaded its index. */
  readonly timing: JobTiming | null;
  /** Epoch ms. */
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly estimatedHostBytes: number;
  readonly estimatedGpuBytes: number;
  /** QUEUE_BACKEND=redis only: the replica running (or that ran) it; null while queued. */
  readonly replica?: string | null;
}

export interface ProgressUpdate {
  phase?: Exclude<JobPhase, 'queued' | 'completed' | 'failed'>;
  /** Fraction of the current phase done, 0..1. */
  fraction?: number;
  bytesDownloaded?: number;
  bytesUploaded?: number;
  /** How the index reached the store (set when the upload ends). */
  upload?: { path: 'copy' | 'stream'; reason?: string; bytesCopied: number };
  /** Set when the job has finished its upload. */
  timing?: JobTiming;
}

/** A finished job's phase times, seconds; copy: the store-side copy started before the build (see run-job.ts). */
export interface JobTiming {
  download: number;
  build: number;
  upload: number;
  wall: number;
  copy: number;
  copyDuringBuild: number;
  /** Why the copy did not run during the build. */
  overlapReason?: string;
}

export class Job {
  status: TaskStatus = 'RUNNING_INDEX_BUILD';
  phase: JobPhase = 'queued';
  progress = 0;
  bytesDownloaded = 0;
  bytesUploaded = 0;
  /** Bytes of the index the store copied from the vectors itself; 'copy' or 'stream', and why, once uploaded. */
  bytesCopied = 0;
  uploadPath: { path: 'copy' | 'stream'; reason?: string } | null = null;
  timing: JobTiming | null = null;
  fileName: string | null = null;
  errorMessage: string | null = null;
  startedAt: number | null = null;
  finishedAt: number | null = null;
  /** 1 for the first build; a client retry of a FAILED job rebuilds it as attempt 2, 3, ... */
  attempt = 1;
  abort = new AbortController();
  /** A status request answered this job's final state (a shutdown need not wait for the client to see it). */
  finalStatusSeen = false;

  constructor(
    readonly id: string,
    public spec: JobSpec,
    public plan: JobPlan,
    readonly createdAt: number,
  ) {}

  get finished(): boolean {
    return this.status !== 'RUNNING_INDEX_BUILD';
  }

  /** The k-NN status; `seen` marks a final status as answered (a shutdown need not wait for the client). */
  statusNow(seen = false): JobStatus {
    if (seen && this.finished) this.finalStatusSeen = true;
    return { status: this.status, fileName: this.fileName, errorMessage: this.errorMessage };
  }

  view(): JobView {
    return {
      id: this.id,
      ...this.statusNow(),
      phase: this.phase,
      spec: this.spec,
      builder: this.phase === 'queued' ? null : this.plan.builder,
      progress: this.progress,
      bytesDownloaded: this.bytesDownloaded,
      bytesUploaded: this.bytesUploaded,
      bytesCopied: this.bytesCopied,
      uploadPath: this.uploadPath,
      timing: this.timing,
      createdAt: this.createdAt,
      startedAt: this.startedAt,
      finishedAt: this.finishedAt,
      estimatedHostBytes: this.plan.hostBytes,
      estimatedGpuBytes: this.plan.builder === 'gpu' ? this.plan.gpuBytes : 0,
    };
  }

  /** Puts a FAILED job back to the start, for a client's retry under the same id. */
  resetForRetry(spec: JobSpec, plan: JobPlan): void {
    this.spec = spec;
    this.status = 'RUNNING_INDEX_BUILD';
    this.phase = 'queued';
    this.progress = 0;
    this.bytesDownloaded = 0;
    this.bytesUploaded = 0;
    this.bytesCopied = 0;
    this.uploadPath = null;
    this.timing = null;
    this.fileName = null;
    this.errorMessage = null;
    this.startedAt = null;
    this.finishedAt = null;
    this.plan = plan;
    this.attempt += 1;
    this.abort = new AbortController();
    this.finalStatusSeen = false;
  }
}
