// Composition of the running service: job store, resources, scheduler, metrics and HTTP app, plus graceful
// shutdown. run.ts gives it settings and the real pipeline (or a test's build double).
import { setTimeout as sleep } from 'node:timers/promises';

import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

import { buildApp } from './api/app.js';
import type { Settings } from './config.js';
import type { JobBackend } from './jobs/backend.js';
import { JobStore } from './jobs/job-store.js';
import { MemoryBackend } from './jobs/memory-backend.js';
import { RedisBackend } from './jobs/redis-backend.js';
import { GpuPool, MemoryBudget } from './jobs/resources.js';
import { type BuildFn, JobScheduler, type PlanFn } from './jobs/scheduler.js';
import { ServiceMetrics } from './metrics.js';

export interface ServiceOptions {
  settings: Settings;
  log: Logger;
  build: BuildFn;
  plan: PlanFn;
  gpuDeviceCount: number;
  version: string;
  now?: () => number;
  /** GPU memory in use on device 0, for the metrics (gpuMemoryReader); absent: no such series. */
  gpuMemoryInUse?: () => number | null;
}

export interface Service {
  readonly settings: Settings;
  readonly log: Logger;
  readonly app: FastifyInstance;
  /** Where the API finds jobs: this process (memory) or Redis shared by every replica. */
  readonly backend: JobBackend;
  /** The jobs this process runs (with QUEUE_BACKEND=redis: this replica's share). */
  readonly store: JobStore;
  readonly scheduler: JobScheduler;
  readonly memory: MemoryBudget;
  readonly gpus: GpuPool;
  /** Prometheus metrics, served at GET /metrics. */
  readonly metrics: ServiceMetrics;
  /**
   * Stops taking builds, lets running ones finish within the grace period, keeps answering _status for the linger
   * (after the last job finished, until each was polled), then closes the server.
   */
  shutdown(graceMs?: number, lingerMs?: number): Promise<void>;
}

export async function createService(o: ServiceOptions): Promise<Service> {
  const s = o.settings;
  const store = new JobStore({
    maxSize: s.requestStoreMaxSize,
    ttlMs: s.requestStoreTtlSeconds * 1000,
    ...(o.now ? { now: o.now } : {}),
  });
  const memory = new MemoryBudget(s.cpuMemoryLimitBytes);
  const gpus = new GpuPool(o.gpuDeviceCount);
  const redis = s.queue.backend === 'redis';
  const scheduler = new JobScheduler({
    store,
    maxWorkers: s.maxWorkers,
    maxQueueWaitSeconds: s.maxQueueWaitSeconds,
    // With Redis, a replica takes a job only once its memory is reserved (RedisBackend), so the scheduler
    // that runs it waits for nothing more.
    memory: redis ? new MemoryBudget(Number.MAX_SAFE_INTEGER) : memory,
    gpus,
    plan: o.plan,
    build: o.build,
    log: o.log,
    ...(o.now ? { now: o.now } : {}),
  });
  const backend: JobBackend = redis
    ? new RedisBackend({
        settings: s,
        store,
        scheduler,
        memory,
        plan: o.plan,
        log: o.log,
        ...(o.now ? { now: o.now } : {}),
      })
    : new MemoryBackend(store, scheduler);
  if (backend instanceof RedisBackend && !(await backend.connected(5_000))) {
    o.log.warn('Redis does not answer yet: builds get 503 until it does (the service keeps trying)');
  }
  // Expired jobs are dropped even when nobody asks for them, so their memory is returned.
  const purge = setInterval(() => store.purgeExpired(), 60_000);
  purge.unref();

  const metrics = new ServiceMetrics({
    store,
    scheduler,
    memory,
    gpus,
    backend,
    gpuMemoryInUse: o.gpuMemoryInUse,
  });
  const app = await buildApp({
    log: o.log,
    backend,
    bodyLimitBytes: s.bodyLimitBytes,
    auth: s.auth,
    version: o.version,
    plugins: [(app) => metrics.route(app)],
  });

  return {
    settings: s,
    log: o.log,
    app,
    backend,
    store,
    scheduler,
    memory,
    gpus,
    metrics,
    async shutdown(graceMs = s.shutdownGraceSeconds * 1000, lingerMs = s.shutdownStatusLingerSeconds * 1000) {
      clearInterval(purge);
      o.log.info({ graceSeconds: graceMs / 1000, unfinished: store.unfinished().length }, 'shutting down');
      await backend.shutdown(graceMs);
      await o.build.close?.(); // every job has settled: the build workers end now
      // k-NN's next poll must find someone answering: this process with the memory backend; with Redis, the final
      // states are in Redis and every other replica answers them (polls do not pass through this store).
      if (!redis) await lingerForPolls(store, lingerMs, o.now ?? Date.now, o.log);
      await app.close();
      o.log.info('shut down');
    },
  };
}

/**
 * Waits (the server still answering) until every job that finished less than `lingerMs` ago has had its final
 * status read by a poll, or until `lingerMs` after the last of them finished. Without it the client's next poll
 * would meet a closed port, and k-NN would build the segment again on its own CPUs.
 */
async function lingerForPolls(
  store: JobStore,
  lingerMs: number,
  now: () => number,
  log: Logger,
): Promise<void> {
  const unseen = () =>
    store.all().filter((j) => j.finishedAt !== null && !j.finalStatusSeen && now() - j.finishedAt < lingerMs);
  const waiting = unseen();
  if (lingerMs <= 0 || waiting.length === 0) return;
  log.info(
    { jobs: waiting.length, lingerSeconds: lingerMs / 1000 },
    'waiting for clients to read the final status of jobs that just finished',
  );
  while (unseen().length > 0) await sleep(100);
}
