// A build job as the service tracks it: the validated request, the k-NN-visible status, and our finer phase.
import { createHash } from 'node:crypto';

import type { BuildRequest, JobPhase, JobSummary, StatusResponse, TaskStatus } from '../api/schemas.js';
import type { BuilderKind } from '../builders/types.js';

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

export interface ProgressUpdate {
  phase?: Exclude<JobPhase, 'queued' | 'completed' | 'failed'>;
  /** Fraction of the current phase done, 0..1. */
  fraction?: number;
  bytesDownloaded?: number;
  bytesUploaded?: number;
}

export class Job {
  status: TaskStatus = 'RUNNING_INDEX_BUILD';
  phase: JobPhase = 'queued';
  progress = 0;
  bytesDownloaded = 0;
  bytesUploaded = 0;
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
    public request: BuildRequest,
    public plan: JobPlan,
    readonly createdAt: number,
  ) {}

  get finished(): boolean {
    return this.status !== 'RUNNING_INDEX_BUILD';
  }

  /** The k-NN status body: exactly these three fields. */
  statusResponse(): StatusResponse {
    if (this.finished) this.finalStatusSeen = true;
    return { task_status: this.status, file_name: this.fileName, error_message: this.errorMessage };
  }

  summary(): JobSummary {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      job_id: this.id,
      task_status: this.status,
      phase: this.phase,
      container_name: this.request.container_name,
      vector_path: this.request.vector_path,
      tenant_id: this.request.tenant_id,
      dimension: this.request.dimension,
      doc_count: this.request.doc_count,
      data_type: this.request.data_type,
      builder: this.phase === 'queued' ? null : this.plan.builder,
      progress: this.progress,
      bytes_downloaded: this.bytesDownloaded,
      bytes_uploaded: this.bytesUploaded,
      file_name: this.fileName,
      error_message: this.errorMessage,
      created_at: new Date(this.createdAt).toISOString(),
      started_at: iso(this.startedAt),
      finished_at: iso(this.finishedAt),
      estimated_host_bytes: this.plan.hostBytes,
      estimated_gpu_bytes: this.plan.builder === 'gpu' ? this.plan.gpuBytes : 0,
    };
  }

  /** Puts a FAILED job back to the start, for a client's retry under the same id. */
  resetForRetry(request: BuildRequest, plan: JobPlan): void {
    this.request = request;
    this.status = 'RUNNING_INDEX_BUILD';
    this.phase = 'queued';
    this.progress = 0;
    this.bytesDownloaded = 0;
    this.bytesUploaded = 0;
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
