// Admission and execution of build jobs: a fixed number run at once (p-queue, MAX_WORKERS); a started job
// first waits for its host memory, takes a GPU lease only for its build phase, and always ends COMPLETED or
// FAILED with a message. The build itself is a function given to the scheduler (the pipeline, or a test double).
import { EventEmitter } from 'node:events';

import PQueue from 'p-queue';
import type { Logger } from 'pino';

import type { BuildSpec, JobSpec } from '../build-spec.js';
import type { JobResult } from '../pipeline/run-job.js';
import { JobRefusedError } from './errors.js';
import { Job, type JobPhase, type JobPlan, type ProgressUpdate, jobIdFor } from './job.js';
import type { JobStore } from './job-store.js';
import type { GpuLease, GpuPool, MemoryBudget, Release } from './resources.js';

export interface BuildContext {
  readonly id: string;
  /** What to build and where (the field keeps its name: the worker message carries it as `request`). */
  readonly request: JobSpec;
  readonly plan: JobPlan;
  readonly attempt: number;
  /** Aborted when the job is cancelled or the service shuts down: stop promptly and clean up. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  report(update: ProgressUpdate): void;
  /** Waits for a GPU (one build per device); the lease ends with the job at the latest. */
  acquireGpu(): Promise<GpuLease>;
}

export interface BuildOutcome {
  /** Bare name of the index object, next to the vectors (e.g. `x.faiss`). */
  fileName: string;
  /** What the pipeline measured (metrics, benches); a build double may leave it out. */
  measurements?: JobResult;
}

/** What the scheduler tells its listeners (the Redis backend, metrics). */
export interface SchedulerEvents {
  phase: [job: Job, phase: JobPhase];
  /** A job ended (COMPLETED or FAILED); `outcome` is its build's when it completed. */
  finished: [job: Job, outcome?: BuildOutcome];
}

export type BuildFn = ((ctx: BuildContext) => Promise<BuildOutcome>) & {
  /** Ends what the build function keeps between jobs (the worker pool); the service calls it after its drain. */
  close?: () => Promise<void>;
};
/** Decides builder and memory needs; throws JobRefusedError('TOO_LARGE') for a job that can never fit. */
export type PlanFn = (spec: BuildSpec) => JobPlan;

export interface SchedulerOptions {
  store: JobStore;
  maxWorkers: number;
  /** A job that waited longer than this (for a worker and for memory) fails instead of starting; 0 or absent: no limit. */
  maxQueueWaitSeconds?: number;
  memory: MemoryBudget;
  gpus: GpuPool;
  plan: PlanFn;
  build: BuildFn;
  log: Logger;
  now?: () => number;
}

export interface SubmitResult {
  job: Job;
  /** False when an existing job answered the request (a retry of a known build). */
  started: boolean;
}

/** Events: SchedulerEvents. */
export class JobScheduler extends EventEmitter<SchedulerEvents> {
  private readonly queue: PQueue;
  private readonly now: () => number;
  private draining = false;

  constructor(private readonly o: SchedulerOptions) {
    super();
    this.queue = new PQueue({ concurrency: o.maxWorkers });
    this.now = o.now ?? Date.now;
  }

  /** Jobs admitted but not yet started (waiting for a worker or for memory). */
  get queuedCount(): number {
    return this.o.store.unfinished().filter((j) => j.phase === 'queued').length;
  }

  /** Admits a build, or answers with the job that already exists for it. Throws JobRefusedError. */
  submit(spec: JobSpec): SubmitResult {
    if (this.draining)
      throw new JobRefusedError('DRAINING', 'the service is shutting down and accepts no new builds');
    const id = jobIdFor(spec.vectorPath, spec.tenantId);
    const existing = this.o.store.get(id);
    this.refuseSharedOutput(id, spec);
    if (existing && existing.status !== 'FAILED_INDEX_BUILD') {
      const difference = requestDifference(existing.spec, spec);
      if (difference) {
        throw new JobRefusedError(
          'CONFLICT',
          `job ${id} for this vector_path and tenant_id exists with different parameters (${difference})`,
        );
      }
      return { job: existing, started: false };
    }
    const plan = this.o.plan(spec);
    let job: Job;
    if (existing) {
      this.o.store.add(existing); // throws STORE_FULL before the failed job is touched
      existing.resetForRetry(spec, plan);
      job = existing;
    } else {
      job = new Job(id, spec, plan, this.now());
      this.o.store.add(job);
    }
    this.logFor(job).info(
      { builder: plan.builder, reason: plan.reason, hostBytes: plan.hostBytes, gpuBytes: plan.gpuBytes },
      'job queued',
    );
    this.emit('phase', job, 'queued');
    // The entry belongs to this attempt: after a cancel and a re-submit, the stale entry finds a newer
    // attempt and does nothing (otherwise both entries would build the new attempt).
    const attempt = job.attempt;
    const queuedAt = this.now();
    void this.queue.add(() => this.run(job, attempt, queuedAt));
    return { job, started: true };
  }

  /**
   * Two jobs for one output object (same container and vector_path, another tenant_id) would write the same
   * `.faiss`, the second silently replacing the first: refused while the other job is unfinished.
   */
  private refuseSharedOutput(id: string, spec: JobSpec): void {
    const other = this.o.store
      .unfinished()
      .find(
        (j) =>
          j.id !== id && j.spec.containerName === spec.containerName && j.spec.vectorPath === spec.vectorPath,
      );
    if (other) throw sharedOutputConflict(other.id, other.spec, spec);
  }

  /** Fails a queued or running job with `reason` and stops its build. False if unknown or finished. */
  cancel(id: string, reason = 'cancelled'): boolean {
    const job = this.o.store.get(id);
    if (!job || job.finished) return false;
    job.abort.abort(new Error(reason));
    this.fail(job, reason);
    return true;
  }

  /**
   * Stops accepting builds, fails the queued ones, lets running ones finish within `graceMs`, then cancels
   * what is left. Resolves when every job has settled.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    for (const job of this.o.store.unfinished()) {
      if (job.phase === 'queued') {
        this.cancel(job.id, 'the service shut down before this build started; send the build again');
      }
    }
    if (!(await settlesWithin(this.queue.onIdle(), graceMs))) {
      for (const job of this.o.store.unfinished()) {
        this.cancel(
          job.id,
          `the service shut down during the build (grace period of ${Math.round(graceMs / 1000)} s ended); send the build again`,
        );
      }
      await settlesWithin(this.queue.onIdle(), 30_000);
    }
  }

  private async run(job: Job, attempt: number, queuedAt: number): Promise<void> {
    // Cancelled while it waited in the queue, or cancelled and sent again (a newer attempt has its own entry).
    if (job.finished || job.attempt !== attempt) return;
    const signal = job.abort.signal;
    const log = this.logFor(job);
    const leases: GpuLease[] = [];
    let releaseMemory: Release | undefined;
    // A late call from an earlier attempt (or after cancel) must not touch the job.
    const current = () => job.attempt === attempt && !job.finished;
    try {
      this.checkQueueWait(queuedAt);
      releaseMemory = await this.o.memory.acquire(job.plan.hostBytes, signal);
      if (!current()) return;
      this.checkQueueWait(queuedAt);
      job.startedAt = this.now();
      const ctx: BuildContext = {
        id: job.id,
        request: job.spec,
        plan: job.plan,
        attempt,
        signal,
        log,
        report: (u) => current() && this.applyProgress(job, u),
        acquireGpu: async () => {
          const lease = await this.o.gpus.acquire(signal);
          leases.push(lease);
          return lease;
        },
      };
      const outcome = await this.o.build(ctx);
      if (!current()) return;
      signal.throwIfAborted();
      this.complete(job, outcome);
    } catch (e) {
      if (!current()) return;
      this.fail(job, signal.aborted ? messageOf(signal.reason) : messageOf(e));
    } finally {
      for (const lease of leases) lease.release();
      releaseMemory?.();
    }
  }

  // k-NN gives up after knn.remote_index_build.client.timeout (60 minutes by default) without telling us:
  // a job that waited longer than MAX_QUEUE_WAIT_SECONDS would be built for nobody.
  private checkQueueWait(queuedAt: number): void {
    const limit = this.o.maxQueueWaitSeconds ?? 0;
    const waited = (this.now() - queuedAt) / 1000;
    if (limit > 0 && waited > limit) throw new Error(queueWaitMessage(waited, limit));
  }

  private applyProgress(job: Job, u: ProgressUpdate): void {
    if (u.phase && u.phase !== job.phase) this.setPhase(job, u.phase);
    if (u.fraction !== undefined) job.progress = Math.min(1, Math.max(0, u.fraction));
    if (u.bytesDownloaded !== undefined) job.bytesDownloaded = u.bytesDownloaded;
    if (u.bytesUploaded !== undefined) job.bytesUploaded = u.bytesUploaded;
    if (u.timing) job.timing = u.timing;
    if (u.upload) {
      job.bytesCopied = u.upload.bytesCopied;
      job.uploadPath = u.upload.reason
        ? { path: u.upload.path, reason: u.upload.reason }
        : { path: u.upload.path };
    }
  }

  private setPhase(job: Job, phase: JobPhase): void {
    job.phase = phase;
    job.progress = phase === 'completed' ? 1 : 0;
    this.logFor(job).info({ phase }, `job ${phase}`);
    this.emit('phase', job, phase);
  }

  private complete(job: Job, outcome: BuildOutcome): void {
    const { fileName } = outcome;
    job.status = 'COMPLETED_INDEX_BUILD';
    job.fileName = fileName;
    job.finishedAt = this.now();
    this.setPhase(job, 'completed');
    this.o.store.markFinished(job);
    this.logFor(job).info({ fileName, seconds: this.elapsed(job) }, 'job completed');
    this.emit('finished', job, outcome);
  }

  private fail(job: Job, message: string): void {
    if (job.finished) return;
    job.status = 'FAILED_INDEX_BUILD';
    job.errorMessage = message;
    job.finishedAt = this.now();
    job.phase = 'failed';
    this.o.store.markFinished(job);
    this.logFor(job).warn({ phase: 'failed', error: message, seconds: this.elapsed(job) }, 'job failed');
    this.emit('phase', job, 'failed');
    this.emit('finished', job);
  }

  private elapsed(job: Job): number {
    return ((job.finishedAt ?? this.now()) - job.createdAt) / 1000;
  }

  private logFor(job: Job): Logger {
    return this.o.log.child({ jobId: job.id, attempt: job.attempt });
  }
}

/** The 409 for a build whose output object another unfinished job (another tenant_id) is writing. */
export function sharedOutputConflict(otherId: string, other: JobSpec, spec: JobSpec): JobRefusedError {
  return new JobRefusedError(
    'CONFLICT',
    `job ${otherId} (tenant_id ${JSON.stringify(other.tenantId)}) is still building the index for ` +
      `${spec.containerName}/${spec.vectorPath}, which this build would overwrite; ` +
      'send it again when that job has finished',
  );
}

/** Why a job that waited `waited` s, over MAX_QUEUE_WAIT_SECONDS = `limit`, was not built. */
export function queueWaitMessage(waited: number, limit: number): string {
  return (
    `the job waited ${Math.round(waited)} s in the queue, over MAX_QUEUE_WAIT_SECONDS (${limit} s): k-NN has ` +
    `most likely stopped polling (knn.remote_index_build.client.timeout) and built the segment itself, so it ` +
    `was not built; raise MAX_WORKERS or CPU_MEMORY_LIMIT, or add replicas, if jobs queue this long`
  );
}

/** The fields requestDifference compares, in order, each with the name the client sent it under. */
const COMPARED_FIELDS: readonly [keyof JobSpec, string][] = [
  ['vectorPath', 'vector_path'],
  ['tenantId', 'tenant_id'],
  ['containerName', 'container_name'],
  ['docIdPath', 'doc_id_path'],
  ['dimension', 'dimension'],
  ['docCount', 'doc_count'],
  ['dataType', 'data_type'],
  ['spaceType', 'space_type'],
  ['m', 'm'],
  ['efConstruction', 'ef_construction'],
  ['efSearch', 'ef_search'],
  ['skipStoredVectors', 'skip_stored_vectors'],
];

/** The first field where two requests for the same job id differ (a hash collision shows as vector_path), or null when they are the same build. */
export function requestDifference(a: JobSpec, b: JobSpec): string | null {
  for (const [key, name] of COMPARED_FIELDS) {
    if (a[key] !== b[key]) return `${name}: ${JSON.stringify(a[key])} vs ${JSON.stringify(b[key])}`;
  }
  return null;
}

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
