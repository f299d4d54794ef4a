// QUEUE_BACKEND=redis: every replica shares one queue and one job store in Redis through BullMQ, so any replica
// behind a load balancer admits, answers and cancels any job.
//   * The job id is the BullMQ job id: concurrent identical POSTs on different replicas add one job (BullMQ adds
//     a job id once); a FAILED job is retried in place; a changed request for a live job is 409.
//   * Each replica runs a BullMQ Worker with concurrency MAX_WORKERS, so it holds at most that many jobs. A job
//     whose host memory is not free here goes back to the head of the queue (for a replica that has it) and this
//     replica takes nothing more until one of its own jobs ends. The build itself runs on the replica's local
//     JobScheduler (worker processes, GPU leases per host), exactly as with the memory backend.
//   * Progress is mirrored into the BullMQ job (updateProgress) so /_jobs on any replica shows it.
//   * A replica that dies stops renewing its job locks; BullMQ's stalled-job check (every REPLICA_LOST_SECONDS,
//     locks of REPLICA_LOST_SECONDS) puts the job back for another replica, REPLICA_LOST_RETRIES times, then
//     fails it with a message saying the replica was lost.
//   * Cancel: a flag in the job's data (a queued job fails when taken) and a pub/sub message to the replica
//     running it.
//   * Redis unreachable: calls fail fast (no offline queue) as BackendUnavailableError -> 503; ioredis and BullMQ
//     reconnect by themselves.
import { Queue, type Job as BullJob, type JobType, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

import { type JobSpec, type RequestFields, requestFieldsOf, specFromRequestFields } from '../build-spec.js';
import type { BuilderKind } from '../builders/types.js';
import type { Settings } from '../config.js';
import {
  type Admission,
  BackendUnavailableError,
  type BackendHealth,
  type CancelResult,
  type JobBackend,
} from './backend.js';
import { JobRefusedError } from './errors.js';
import { type Job, type JobPhase, type JobStatus, type JobView, jobIdFor, type JobTiming } from './job.js';
import type { JobStore } from './job-store.js';
import type { MemoryBudget } from './resources.js';
import {
  type JobScheduler,
  type PlanFn,
  queueWaitMessage,
  requestDifference,
  sharedOutputConflict,
} from './scheduler.js';

export const QUEUE_NAME = 'builds';
/** BullMQ's own failedReason for a job that stalled more than maxStalledCount times. */
const STALLED_REASON = /stalled more than allowable limit/;
/** How long one Redis call may take before the request gets 503. */
const COMMAND_TIMEOUT_MS = 3_000;
/** How often running jobs' progress is written to Redis. */
const PROGRESS_INTERVAL_MS = 1_000;
/** How long DELETE waits for the replica running a job to confirm it stopped. */
const CANCEL_CONFIRM_MS = 10_000;
const ALL_STATES = ['active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed'] as const;
const UNFINISHED_STATES: JobType[] = ['active', 'waiting', 'prioritized', 'delayed'];

/**
 * What a BullMQ job carries: the job's spec under k-NN's request field names (as every earlier version stored it,
 * so replicas of different versions share one queue during a rolling upgrade), plus a cancel flag set by DELETE.
 */
interface JobData {
  request: RequestFields;
  admittedBy: string;
  /** When the client asked (ms): MAX_QUEUE_WAIT_SECONDS counts from here, on whichever replica takes it. */
  queuedAt?: number;
  cancelled?: string;
}

/** The job's progress as the replica running it reports it. */
interface JobProgress {
  replica: string;
  phase: JobPhase;
  progress: number;
  bytesDownloaded: number;
  bytesUploaded: number;
  bytesCopied: number;
  uploadPath: { path: 'copy' | 'stream'; reason?: string } | null;
  timing?: JobTiming | null;
  builder: BuilderKind;
  hostBytes: number;
  gpuBytes: number;
  startedAt: number | null;
}

interface JobReturn {
  fileName: string;
}

type Bull = BullJob<JobData, JobReturn>;
type State = Awaited<ReturnType<Bull['getState']>>;

export interface RedisBackendOptions {
  settings: Settings;
  /** This replica's executor (and its store of the jobs it ran). */
  store: JobStore;
  scheduler: JobScheduler;
  /** Host memory of this replica (CPU_MEMORY_LIMIT): a job is taken only when its estimate fits now. */
  memory: MemoryBudget;
  plan: PlanFn;
  log: Logger;
  now?: () => number;
}

interface Running {
  bull: Bull;
  job: Job;
  lastProgress: string;
}

export class RedisBackend implements JobBackend {
  readonly kind = 'redis' as const;
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly workerConnection: Redis;
  private readonly queue: Queue<JobData, JobReturn>;
  private readonly worker: Worker<JobData, JobReturn>;
  private readonly channel: string;
  private readonly replica: string;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly running = new Map<string, Running>();
  /** Cancel messages for jobs not (yet) running here, in case the job starts here just after. */
  private readonly cancelRequests = new Map<string, { reason: string; at: number }>();
  /** Jobs whose lock this replica lost, and jobs it hands back at shutdown: not failed by this replica. */
  private readonly handBack = new Set<string>();
  private readonly waitingFinish = new Map<string, () => void>();
  private readonly timers: NodeJS.Timeout[] = [];
  private fetchingHeld = false;
  private draining = false;
  private lastError = '';

  constructor(private readonly o: RedisBackendOptions) {
    const q = o.settings.queue;
    this.replica = q.replicaName;
    this.ttlMs = o.settings.requestStoreTtlSeconds * 1000;
    this.now = o.now ?? Date.now;
    this.log = o.log.child({ replica: this.replica });
    const base: RedisOptions = {
      // Reconnect quickly and forever: the service recovers by itself when Redis comes back.
      retryStrategy: (times) => Math.min(100 * times, 2_000),
      connectTimeout: 5_000,
    };
    const url = q.redisUrl!;
    // API calls answer 503 at once while the connection is down (redis() checks it first), and within
    // COMMAND_TIMEOUT_MS when it drops mid-call.
    this.client = new Redis(url, { ...base, maxRetriesPerRequest: 1, commandTimeout: COMMAND_TIMEOUT_MS });
    this.subscriber = new Redis(url, base);
    // BullMQ's worker blocks on Redis: no per-request retry limit (BullMQ requires it).
    this.workerConnection = new Redis(url, { ...base, maxRetriesPerRequest: null });
    for (const [name, c] of [
      ['commands', this.client],
      ['subscriber', this.subscriber],
      ['worker', this.workerConnection],
    ] as const) {
      c.on('error', (e: Error) => this.noteError(`redis ${name} connection`, e));
      c.on('ready', () => {
        this.lastError = '';
        this.log.info({ connection: name }, 'redis connected');
      });
    }
    this.channel = `${q.redisPrefix}:${QUEUE_NAME}:cancel`;
    this.queue = new Queue<JobData, JobReturn>(QUEUE_NAME, {
      connection: this.client,
      prefix: q.redisPrefix,
      defaultJobOptions: {
        attempts: 1,
        removeOnComplete: { age: o.settings.requestStoreTtlSeconds },
        removeOnFail: { age: o.settings.requestStoreTtlSeconds },
      },
    });
    this.queue.on('error', (e) => this.noteError('queue', e));
    const lostMs = q.replicaLostSeconds * 1000;
    this.worker = new Worker<JobData, JobReturn>(QUEUE_NAME, (job, token) => this.process(job, token), {
      connection: this.workerConnection,
      prefix: q.redisPrefix,
      name: this.replica,
      concurrency: o.settings.maxWorkers,
      lockDuration: lostMs,
      stalledInterval: lostMs,
      maxStalledCount: q.replicaLostRetries,
      runRetryDelay: 1_000,
    });
    this.worker.on('error', (e) => this.noteError('worker', e));
    this.worker.on('lockRenewalFailed', (ids) => this.onLockLost(ids));

    void this.subscriber.subscribe(this.channel).catch((e: Error) => this.noteError('subscribe', e));
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.onCancelMessage(message);
    });
    o.scheduler.on('finished', (job: Job) => this.waitingFinish.get(job.id)?.());
    o.scheduler.on('phase', (job: Job) => {
      const r = this.running.get(job.id);
      if (r && r.job === job) void this.pushProgress(r);
    });
    const progress = setInterval(() => {
      for (const r of this.running.values()) void this.pushProgress(r);
    }, PROGRESS_INTERVAL_MS);
    // Finished jobs leave Redis REQUEST_STORE_TTL_SECONDS after they finished, even if no other job finishes.
    const clean = setInterval(() => void this.clean(), Math.min(60_000, this.ttlMs));
    this.timers.push(progress, clean);
    for (const t of this.timers) t.unref();
  }

  // ---- the API side (any replica)

  async submit(spec: JobSpec): Promise<Admission> {
    if (this.draining) {
      throw new JobRefusedError('DRAINING', 'this replica is shutting down and accepts no new builds');
    }
    this.o.plan(spec); // refuses (507) a build that can never fit, before anything is stored
    const id = jobIdFor(spec.vectorPath, spec.tenantId);
    const data: JobData = { request: requestFieldsOf(spec), admittedBy: this.replica, queuedAt: this.now() };
    return this.redis(async () => {
      const found = await this.read(id);
      if (found) {
        const { bull: existing, state } = found;
        const view = this.view(existing, state);
        if (view && view.status !== 'FAILED_INDEX_BUILD') {
          this.refuseChanged(id, specFromRequestFields(existing.data.request), spec);
          return { id, started: false };
        }
        if (view) {
          // A client's retry of a FAILED (or cancelled, still queued) job rebuilds it under the same id.
          await existing.updateData(data);
          if (state === 'failed') {
            // Another replica may retry it at the same moment: whoever moves it first wins, both answer the id.
            await existing
              .retry('failed')
              .catch((e: Error) => this.log.debug({ jobId: id, err: e.message }, 'retry'));
          }
          this.log.info({ jobId: id }, 'job queued again (retry of a failed build)');
          return { id, started: true };
        }
        await existing.remove().catch(() => undefined); // finished and expired: start afresh
      }
      await this.checkCapacity();
      await this.refuseSharedOutput(id, spec);
      await this.queue.add('build', data, { jobId: id });
      // Concurrent POSTs for one id add one job; a different request that won the race is still a conflict.
      const stored = await this.queue.getJob(id);
      if (stored) this.refuseChanged(id, specFromRequestFields(stored.data.request), spec);
      this.log.info({ jobId: id }, 'job queued');
      return { id, started: true };
    });
  }

  async status(id: string): Promise<JobStatus | undefined> {
    return this.redis(async () => {
      const found = await this.read(id);
      return found && this.view(found.bull, found.state);
    });
  }

  async list(): Promise<JobView[]> {
    return this.redis(async () => {
      const limit = this.o.settings.requestStoreMaxSize;
      const groups = await Promise.all(
        ALL_STATES.map(async (state) => {
          const jobs = (await this.queue.getJobs([state], 0, limit - 1, true)) as Bull[];
          return jobs.filter(Boolean).map((j) => this.summary(j, state));
        }),
      );
      return groups.flat().filter((s): s is JobView => s !== undefined);
    });
  }

  async cancel(id: string, reason: string): Promise<CancelResult> {
    return this.redis(async () => {
      const found = await this.read(id);
      const before = found && this.summary(found.bull, found.state);
      if (!found || !before) return { outcome: 'unknown' };
      const { bull, state } = found;
      if (before.status !== 'RUNNING_INDEX_BUILD') return { outcome: 'finished', job: before };
      // The flag answers FAILED at once (a queued job fails when a replica takes it); the message stops it
      // on the replica that runs it.
      await bull.updateData({ ...bull.data, cancelled: reason });
      await this.client.publish(this.channel, JSON.stringify({ id, reason }));
      const deadline = this.now() + CANCEL_CONFIRM_MS;
      let after = before;
      do {
        const current = await this.read(id);
        const s = current && this.summary(current.bull, current.state);
        if (!s) break;
        after = s;
        if (state !== 'active' || s.phase === 'failed' || s.phase === 'completed') break;
        await new Promise((r) => setTimeout(r, 50));
      } while (this.now() < deadline);
      return { outcome: 'cancelled', job: after };
    });
  }

  async health(): Promise<BackendHealth> {
    const base = { kind: 'redis' as const, replica: this.replica };
    if (this.client.status !== 'ready') {
      return { ...base, up: false, detail: `Redis connection ${this.client.status}${this.errorSuffix()}` };
    }
    try {
      await this.client.ping();
      return { ...base, up: true };
    } catch (e) {
      return { ...base, up: false, detail: `Redis does not answer: ${(e as Error).message}` };
    }
  }

  /** Resolves once Redis answers, or after `ms` (the service starts either way and recovers later). */
  async connected(ms: number): Promise<boolean> {
    const deadline = this.now() + ms;
    while (this.client.status !== 'ready' && this.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    return this.client.status === 'ready';
  }

  async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    this.holdFetching();
    const local = [...this.running.keys()];
    this.log.info({ running: local.length, graceSeconds: graceMs / 1000 }, 'replica draining');
    const deadline = this.now() + graceMs;
    while (this.running.size > 0 && this.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // Builds still running go back to the queue for another replica rather than failing.
    for (const id of this.running.keys()) {
      this.handBack.add(id);
      this.o.scheduler.cancel(id, 'this replica shut down; the build goes back to the queue');
    }
    // Each step is bounded: with Redis away, closing must not hang the process's exit.
    const step = (p: Promise<unknown>) =>
      settlesWithin(
        p.catch((e: Error) => this.noteError('close', e)),
        5_000,
      );
    await step(this.worker.close());
    await this.o.scheduler.shutdown(1_000);
    for (const t of this.timers) clearInterval(t);
    await step(this.queue.close());
    await step(Promise.all([this.subscriber, this.client, this.workerConnection].map((c) => c.quit())));
    for (const c of [this.subscriber, this.client, this.workerConnection]) c.disconnect();
  }

  // ---- the worker side (the replica that runs the job)

  private async process(bull: Bull, token?: string): Promise<JobReturn> {
    const id = bull.id!;
    const log = this.log.child({ jobId: id });
    const cancelled = bull.data.cancelled ?? this.takeCancelRequest(id);
    if (cancelled) throw new UnrecoverableError(cancelled);
    const limit = this.o.settings.maxQueueWaitSeconds;
    const waited = (this.now() - (bull.data.queuedAt ?? bull.timestamp)) / 1000;
    if (limit > 0 && waited > limit) throw new UnrecoverableError(queueWaitMessage(waited, limit));
    let plan;
    try {
      plan = this.o.plan(specFromRequestFields(bull.data.request));
    } catch (e) {
      throw new UnrecoverableError(`replica ${this.replica} cannot build this: ${(e as Error).message}`);
    }
    const release = this.o.memory.tryAcquire(plan.hostBytes);
    if (!release) {
      // Not enough host memory free here now: back to the head of the queue for a replica that has it, and
      // this replica takes nothing more until one of its own builds ends.
      log.info(
        { hostBytes: plan.hostBytes, reserved: this.o.memory.inUse },
        'no memory free here: job handed back',
      );
      this.holdFetching();
      await bull.moveToWait(token);
      if (this.running.size === 0) this.resumeFetching();
      throw new WaitingError();
    }
    try {
      return await this.runHere(bull, token, log);
    } finally {
      release();
      this.running.delete(id);
      this.handBack.delete(id);
      if (!this.draining) this.resumeFetching();
    }
  }

  private async runHere(bull: Bull, token: string | undefined, log: Logger): Promise<JobReturn> {
    const id = bull.id!;
    let job: Job;
    try {
      job = this.o.scheduler.submit(specFromRequestFields(bull.data.request)).job;
    } catch (e) {
      throw new UnrecoverableError((e as Error).message);
    }
    if (job.id !== id) throw new UnrecoverableError(`job id ${job.id} does not match the queue's ${id}`);
    const entry: Running = { bull, job, lastProgress: '' };
    this.running.set(id, entry);
    log.info({ attempt: bull.attemptsMade + 1, stalled: bull.stalledCounter }, 'job taken by this replica');
    const late = this.takeCancelRequest(id);
    if (late) this.o.scheduler.cancel(id, late);
    await this.pushProgress(entry); // at once: /_jobs names this replica from now on
    await this.finished(job);
    await this.pushProgress(entry);
    if (job.status === 'COMPLETED_INDEX_BUILD') return { fileName: job.fileName! };
    if (this.handBack.has(id)) {
      // Shutdown: another replica takes it. (A lost lock: the job is no longer ours to move; BullMQ re-queues it.)
      if (this.draining) await bull.moveToWait(token).catch((e: Error) => this.noteError('hand back', e));
      throw new WaitingError();
    }
    throw new UnrecoverableError(job.errorMessage ?? 'the build failed');
  }

  private finished(job: Job): Promise<void> {
    if (job.finished) return Promise.resolve();
    return new Promise((resolve) => {
      this.waitingFinish.set(job.id, () => {
        if (!job.finished) return;
        this.waitingFinish.delete(job.id);
        resolve();
      });
    });
  }

  private async pushProgress(r: Running): Promise<void> {
    const { job } = r;
    const progress: JobProgress = {
      replica: this.replica,
      phase: job.phase,
      progress: job.progress,
      bytesDownloaded: job.bytesDownloaded,
      bytesUploaded: job.bytesUploaded,
      bytesCopied: job.bytesCopied,
      uploadPath: job.uploadPath,
      timing: job.timing,
      builder: job.plan.builder,
      hostBytes: job.plan.hostBytes,
      gpuBytes: job.plan.builder === 'gpu' ? job.plan.gpuBytes : 0,
      startedAt: job.startedAt,
    };
    const text = JSON.stringify(progress);
    if (text === r.lastProgress || this.client.status !== 'ready') return;
    r.lastProgress = text;
    await r.bull.updateProgress(progress as unknown as object).catch((e: Error) => {
      r.lastProgress = '';
      this.noteError('progress', e);
    });
  }

  private onCancelMessage(message: string): void {
    let m: { id?: unknown; reason?: unknown };
    try {
      m = JSON.parse(message) as typeof m;
    } catch {
      return;
    }
    if (typeof m.id !== 'string' || typeof m.reason !== 'string') return;
    if (this.running.has(m.id)) {
      this.log.info({ jobId: m.id }, 'job cancelled by request (via another replica)');
      this.o.scheduler.cancel(m.id, m.reason);
      return;
    }
    const cutoff = this.now() - 60_000;
    for (const [k, v] of this.cancelRequests) if (v.at < cutoff) this.cancelRequests.delete(k);
    this.cancelRequests.set(m.id, { reason: m.reason, at: this.now() });
  }

  private takeCancelRequest(id: string): string | undefined {
    const r = this.cancelRequests.get(id);
    this.cancelRequests.delete(id);
    return r?.reason;
  }

  private onLockLost(ids: string[]): void {
    for (const id of ids) {
      if (!this.running.has(id)) continue;
      this.log.warn(
        { jobId: id },
        'lost the lock on this job (Redis was away too long): stopping the local build',
      );
      this.handBack.add(id);
      this.o.scheduler.cancel(id, 'this replica lost its lock on the job; another replica builds it');
    }
  }

  private holdFetching(): void {
    if (this.fetchingHeld) return;
    this.fetchingHeld = true;
    void this.worker.pause(true).catch((e: Error) => this.noteError('pause', e));
  }

  private resumeFetching(): void {
    if (!this.fetchingHeld) return;
    this.fetchingHeld = false;
    this.worker.resume();
  }

  // ---- reading jobs

  /** A job and its state. The state is read first: a job that is finished then has its result in the hash. */
  private async read(id: string): Promise<{ bull: Bull; state: State } | undefined> {
    const state = await this.queue.getJobState(id);
    if (state === 'unknown') return undefined;
    const bull = (await this.queue.getJob(id)) as Bull | undefined;
    return bull ? { bull, state } : undefined;
  }

  /** The k-NN view of a job, or undefined when it does not count as existing (expired, gone). */
  private view(bull: Bull, state: State): JobStatus | undefined {
    if (state === 'unknown') return undefined;
    if (bull.finishedOn && this.now() - bull.finishedOn >= this.ttlMs) return undefined;
    if (state === 'completed') {
      return {
        status: 'COMPLETED_INDEX_BUILD',
        fileName: bull.returnvalue?.fileName ?? null,
        errorMessage: null,
      };
    }
    if (state === 'failed') {
      return { status: 'FAILED_INDEX_BUILD', fileName: null, errorMessage: this.failureMessage(bull) };
    }
    if (bull.data.cancelled) {
      return { status: 'FAILED_INDEX_BUILD', fileName: null, errorMessage: bull.data.cancelled };
    }
    return { status: 'RUNNING_INDEX_BUILD', fileName: null, errorMessage: null };
  }

  private failureMessage(bull: Bull): string {
    const reason = bull.failedReason || 'the build failed';
    if (!STALLED_REASON.test(reason)) return reason;
    // The replica that last reported (it does so as soon as it takes a job). Not BullMQ's processedBy: BullMQ
    // fails a job stalled too often only when the next replica takes it, and records that one.
    const replica = this.progressOf(bull)?.replica ?? bull.processedBy;
    const q = this.o.settings.queue;
    const retried =
      q.replicaLostRetries > 0
        ? `it had already been retried on another replica ${q.replicaLostRetries} time(s) (REPLICA_LOST_RETRIES=${q.replicaLostRetries})`
        : 'it is not retried (REPLICA_LOST_RETRIES=0)';
    return (
      `the replica running this build${replica ? ` (${replica})` : ''} was lost: it stopped renewing its lock in ` +
      `Redis for REPLICA_LOST_SECONDS=${q.replicaLostSeconds} (killed, crashed or cut off from Redis); ` +
      `${retried}; send the build again`
    );
  }

  private progressOf(bull: Bull): JobProgress | undefined {
    const p = bull.progress as unknown;
    return typeof p === 'object' && p !== null && 'replica' in p ? (p as JobProgress) : undefined;
  }

  private summary(bull: Bull, state: State): JobView | undefined {
    const view = this.view(bull, state);
    if (!view) return undefined;
    const queued = state === 'waiting' || state === 'delayed' || state === 'prioritized';
    const p = queued ? undefined : this.progressOf(bull);
    const phase: JobPhase =
      view.status === 'COMPLETED_INDEX_BUILD'
        ? 'completed'
        : view.status === 'FAILED_INDEX_BUILD'
          ? 'failed'
          : (p?.phase ?? 'queued');
    return {
      id: bull.id!,
      ...view,
      phase,
      spec: specFromRequestFields(bull.data.request),
      builder: p?.builder ?? null,
      progress: phase === 'completed' ? 1 : (p?.progress ?? 0),
      bytesDownloaded: p?.bytesDownloaded ?? 0,
      bytesUploaded: p?.bytesUploaded ?? 0,
      bytesCopied: p?.bytesCopied ?? 0,
      uploadPath: p?.uploadPath ?? null,
      timing: p?.timing ?? null,
      createdAt: bull.timestamp,
      startedAt: p?.startedAt ?? bull.processedOn ?? null,
      finishedAt: bull.finishedOn ?? null,
      estimatedHostBytes: p?.hostBytes ?? 0,
      estimatedGpuBytes: p?.gpuBytes ?? 0,
      replica: queued ? null : (p?.replica ?? bull.processedBy ?? null),
    };
  }

  private refuseChanged(id: string, existing: JobSpec, spec: JobSpec): void {
    const difference = requestDifference(existing, spec);
    if (difference) {
      throw new JobRefusedError(
        'CONFLICT',
        `job ${id} for this vector_path and tenant_id exists with different parameters (${difference})`,
      );
    }
  }

  /**
   * Two jobs for one output object (same container and vector_path, another tenant_id) would write the same
   * `.faiss`: refused while the other job is unfinished on any replica (as the memory backend does).
   */
  private async refuseSharedOutput(id: string, spec: JobSpec): Promise<void> {
    const max = this.o.settings.requestStoreMaxSize;
    const unfinished = (await this.queue.getJobs(UNFINISHED_STATES, 0, max - 1)) as Bull[];
    const other = unfinished.find(
      (j) =>
        j &&
        j.id !== id &&
        j.data.request.container_name === spec.containerName &&
        j.data.request.vector_path === spec.vectorPath,
    );
    if (other?.id) throw sharedOutputConflict(other.id, specFromRequestFields(other.data.request), spec);
  }

  private async checkCapacity(): Promise<void> {
    const counts = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    const unfinished = Object.values(counts).reduce((a, b) => a + b, 0);
    const max = this.o.settings.requestStoreMaxSize;
    if (unfinished >= max) {
      throw new JobRefusedError(
        'STORE_FULL',
        `the job store is full: ${unfinished} jobs are queued or running on all replicas (REQUEST_STORE_MAX_SIZE=${max})`,
      );
    }
  }

  private async clean(): Promise<void> {
    if (this.client.status !== 'ready') return;
    for (const type of ['completed', 'failed'] as const) {
      await this.queue.clean(this.ttlMs, 1000, type).catch((e: Error) => this.noteError('clean', e));
    }
  }

  // ---- Redis reachability

  /** Runs Redis calls; an unreachable Redis becomes BackendUnavailableError (503), never a hang or a crash. */
  private async redis<T>(fn: () => Promise<T>): Promise<T> {
    if (this.client.status !== 'ready') throw this.unavailable(`connection ${this.client.status}`);
    try {
      return await fn();
    } catch (e) {
      if (e instanceof JobRefusedError) throw e;
      const message = (e as Error).message ?? String(e);
      if (this.client.status !== 'ready' || CONNECTION_ERROR.test(message)) throw this.unavailable(message);
      throw e;
    }
  }

  private unavailable(why: string): BackendUnavailableError {
    return new BackendUnavailableError(
      `the job store (Redis) is unreachable from replica ${this.replica} (${why}); retry shortly`,
    );
  }

  private noteError(where: string, e: Error): void {
    const message = `${where}: ${e.message}`;
    // One line per distinct error while Redis is away, not one per reconnect attempt.
    if (message === this.lastError) return;
    this.lastError = message;
    this.log.warn({ err: e.message, where }, 'redis error');
  }

  private errorSuffix(): string {
    return this.lastError ? ` (${this.lastError})` : '';
  }
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

const CONNECTION_ERROR =
  /connection|closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|timed out|writeable|LOADING|READONLY/i;
