// The service side of job isolation: every job runs its pipeline in a worker process (src/pipeline/worker.ts).
// A pool keeps warm, long-lived workers (WARM_WORKERS, the default): each runs one job at a time and then takes
// the next, so a job pays neither Node's start-up nor the GPU's (CUDA context, cuBLAS handle, pinned buffers:
// about 0.45 s, made once per worker by gpuWarmUp). With WARM_WORKERS=false every job gets a fresh process.
// Isolation is kept either way: a worker that dies (native crash, abort, OOM kill) fails only the job it ran,
// with a message that says how, and the pool starts another. Cancel asks the worker to abort; one that does not
// settle within the grace is killed (and replaced).
//
// The GPU lease travels one path: the scheduler owns the GpuPool (ctx.acquireGpu); when the pipeline in the
// worker reaches its build, the worker asks ('acquire-gpu'), this side takes the lease from the scheduler and
// sends its device ('gpu'); run-job.ts passes the device to the builder (options.gpu.device), which builds on
// the warm context of that device. The worker returns it ('release-gpu') after the build; the job's end (or the
// worker's death) returns it at the latest.
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { Logger } from 'pino';

import type { BuildContext, BuildFn, BuildOutcome } from './scheduler.js';
import type { FromWorker, ToWorker, WorkerConfig } from '../pipeline/messages.js';
import { createObjectStore } from '../storage/index.js';
import type { StorageSettings } from '../storage/settings.js';
import type { ObjectLocation } from '../storage/types.js';
import { tsxExecArgv } from '../tsx-loader.js';

/** How long a cancelled worker may take to abort its job before it is killed. */
const CANCEL_GRACE_MS = 5_000;
/** How long a worker may take, after its job settled, to be ready again (or to exit when retired). */
const SETTLE_MS = 10_000;
/** A worker that died idle is replaced after this long (doubling while replacements keep dying, to 30 s). */
const REPLACE_DELAY_MS = 500;

/** Workers alive now: killed with the service if it exits without closing the pool (a second signal, a crash). */
const liveWorkers = new Set<ChildProcess>();
let killWorkersOnExit = false;

function track(child: ChildProcess): void {
  liveWorkers.add(child);
  child.once('exit', () => liveWorkers.delete(child));
  if (killWorkersOnExit) return;
  killWorkersOnExit = true;
  process.once('exit', () => {
    for (const worker of liveWorkers) worker.kill('SIGKILL');
  });
}

/** Long-lived workers (WARM_WORKERS=true). */
export interface WarmPoolOptions {
  /** Idle workers kept ready (MAX_WORKERS: one per job that may run at once). */
  size: number;
  /** A worker is replaced after this many jobs (WORKER_MAX_JOBS). */
  maxJobs: number;
  /** A worker whose resident memory after a job (after a GC) is above this is replaced (WORKER_MAX_IDLE_RSS). */
  maxIdleRssBytes: number;
}

export interface ProcessBuildOptions {
  config: WorkerConfig;
  /** Keep warm workers; absent: one process per job. */
  pool?: WarmPoolOptions;
  /** GPUs every warm worker makes ready at its start (BUILDER=gpu, or auto with a GPU found). */
  warmGpus?: readonly number[];
  /**
   * Aborts an S3 multipart upload a worker left open when it died without reporting (WriteOptions.onMultipart).
   * Default: through a store made from the workers' own storage settings (config.storage), when that is S3; the
   * local store needs none (its temporary files are swept at start-up and by the object's next write).
   */
  abortUpload?: (location: ObjectLocation, uploadId: string) => Promise<void>;
  /** The pool's own events (worker started, replaced, GPU warmed); jobs log through their context. */
  log?: Logger;
  /** Tests: another worker program, and shorter waits. */
  worker?: { file: string; execArgv: string[]; settleMs?: number; cancelGraceMs?: number };
}

/** The build function of the service, plus the pool's life cycle. */
export interface ProcessBuild extends BuildFn {
  /** Ends every worker (idle ones at once, busy ones when their job settles; SIGKILL after the settle time). */
  close(): Promise<void>;
  /** Pids of the workers alive now (tests, /_jobs). */
  pids(): number[];
}

/**
 * The worker entry: worker.ts under tsx (dev, tests); worker.js when compiled (dist/src/pipeline/), or beside an
 * esbuild bundle of the service (scripts/gpu-bundle.sh puts both entries in one folder).
 */
function workerEntry(): { file: string; execArgv: string[] } {
  const ts = fileURLToPath(new URL('../pipeline/worker.ts', import.meta.url));
  if (import.meta.url.endsWith('.ts') && existsSync(ts)) return { file: ts, execArgv: tsxExecArgv() };
  const compiled = fileURLToPath(new URL('../pipeline/worker.js', import.meta.url));
  const bundled = fileURLToPath(new URL('./worker.js', import.meta.url));
  return { file: existsSync(compiled) ? compiled : bundled, execArgv: [] };
}

export function createProcessBuild(o: ProcessBuildOptions): ProcessBuild {
  const pool = new WorkerPool(o);
  pool.fill();
  return Object.assign((ctx: BuildContext) => pool.run(ctx), {
    close: () => pool.close(),
    pids: () => pool.pids(),
  });
}

type State = 'idle' | 'busy' | 'settling' | 'retiring';

interface Worker {
  child: ChildProcess;
  pid: number;
  state: State;
  jobs: number;
  /** Set up for jobs: its GPU warm-up reported (or none was asked for), or it has run a job. */
  primed: boolean;
  /** When it last became idle after a job (performance.now()); 0 before its first job. */
  lastUsed: number;
  /** Messages and death of the job it runs now. */
  onMessage?: (m: FromWorker) => void;
  onClose?: (code: number | null, signal: NodeJS.Signals | null) => void;
  /** Settles the wait for 'ready' after a job, and the timer that kills a worker that never gets ready. */
  onReady?: (rssBytes: number) => void;
  settleTimer?: NodeJS.Timeout;
  /** Resolves when the process is gone and the pool has dealt with it. */
  gone: Promise<void>;
}

class WorkerPool {
  private readonly entry: { file: string; execArgv: string[] };
  private readonly workers = new Set<Worker>();
  /** Jobs waiting for a worker that is cleaning up after its job (see run). */
  private readonly waiting: { take: (w: Worker) => void; fail: (e: Error) => void }[] = [];
  private closing = false;
  private replaceDelayMs = REPLACE_DELAY_MS;
  private readonly settleMs: number;
  private readonly cancelGraceMs: number;

  constructor(private readonly o: ProcessBuildOptions) {
    const entry = o.worker ?? workerEntry();
    // gc() after every job: an idle worker must not keep the garbage of its last build (see ready()).
    this.entry = { file: entry.file, execArgv: [...entry.execArgv, '--expose-gc'] };
    this.settleMs = o.worker?.settleMs ?? SETTLE_MS;
    this.cancelGraceMs = o.worker?.cancelGraceMs ?? CANCEL_GRACE_MS;
  }

  pids(): number[] {
    return [...this.workers].map((w) => w.pid);
  }

  /** Starts workers until `size` are alive and not retiring (warm pools only). */
  fill(): void {
    if (!this.o.pool || this.closing) return;
    const alive = [...this.workers].filter((w) => w.state !== 'retiring').length;
    for (let i = alive; i < this.o.pool.size; i++) this.offer(this.spawn());
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const w of this.waiting.splice(0)) w.fail(new Error('the service is shutting down'));
    const workers = [...this.workers];
    for (const w of workers) {
      if (w.state === 'idle') this.retire(w, 'the service is shutting down');
      // A busy one is retired when its job settles (none should be, after the scheduler's drain).
      const timer = setTimeout(() => w.child.kill('SIGKILL'), this.settleMs + this.cancelGraceMs);
      timer.unref();
      void w.gone.then(() => clearTimeout(timer));
    }
    await Promise.all(workers.map((w) => w.gone));
  }

  async run(ctx: BuildContext): Promise<BuildOutcome> {
    const worker = await this.take();
    worker.state = 'busy';
    worker.jobs++;
    return this.runOn(worker, ctx);
  }

  /**
   * An idle worker: a primed one first (one still starting, e.g. a replacement, would make the job wait for its
   * CUDA set-up), the most recently used among them (the one most likely warm); or, when one is still cleaning up
   * after its job (the next job follows at once when every worker was busy), that one as soon as it is ready or
   * replaced; else a new one.
   */
  private take(): Promise<Worker> {
    const idle = [...this.workers].filter((w) => w.state === 'idle');
    if (idle.length > 0) {
      const rank = (w: Worker) => (w.primed ? 1 : 0);
      idle.sort((a, b) => rank(b) - rank(a) || b.lastUsed - a.lastUsed);
      return Promise.resolve(idle[0]!);
    }
    const settling = [...this.workers].filter((w) => w.state === 'settling').length;
    if (!this.o.pool || this.closing || settling <= this.waiting.length) return Promise.resolve(this.spawn());
    return new Promise((take, fail) => this.waiting.push({ take, fail }));
  }

  /** A worker became idle: to the first job waiting, if any. */
  private offer(worker: Worker): void {
    const next = this.waiting.shift();
    if (!next) return;
    worker.state = 'busy'; // taken: no other job may get it before run() marks it
    next.take(worker);
  }

  private spawn(): Worker {
    const child = fork(this.entry.file, [], {
      execArgv: this.entry.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    track(child);
    let gone!: () => void;
    const worker: Worker = {
      child,
      pid: child.pid ?? -1,
      state: 'idle',
      jobs: 0,
      primed: !(this.o.pool && this.o.warmGpus?.length),
      lastUsed: 0,
      gone: new Promise<void>((resolve) => (gone = resolve)),
    };
    this.workers.add(worker);
    child.on('message', (m: FromWorker) => {
      if (m.type === 'ready') worker.onReady?.(m.rssBytes);
      else if (m.type === 'gpu-warm-up') {
        worker.primed = true;
        this.logWarmUp(worker, m);
      } else worker.onMessage?.(m);
    });
    child.on('error', (e) => this.o.log?.warn({ worker: worker.pid, err: e }, 'build worker error'));
    const ended = (code: number | null, signal: NodeJS.Signals | null) => {
      if (!this.workers.delete(worker)) return;
      clearTimeout(worker.settleTimer);
      worker.onReady = undefined;
      gone();
      if (worker.onClose) return worker.onClose(code, signal);
      if (worker.state === 'retiring' || this.closing) return;
      // Died while idle (or while getting ready after a job): nobody's job is lost, but the pool is one short.
      this.o.log?.warn({ worker: worker.pid, code, signal }, 'idle build worker died: starting another');
      this.replaceLater();
    };
    // During a job, 'close', not 'exit': it comes after the IPC channel has delivered every message, so a worker
    // that reported and then exited is never taken for one that died (under load 'exit' can overtake the last
    // messages). Between jobs 'exit' (after the service closed the channel, Node never emits 'close').
    child.on('close', ended);
    child.on('exit', (code, signal) => {
      if (!worker.onClose) ended(code, signal);
    });
    if (this.o.pool && this.o.warmGpus?.length)
      this.send(worker, { type: 'warm-up', gpus: [...this.o.warmGpus] });
    this.o.log?.debug({ worker: worker.pid }, 'build worker started');
    return worker;
  }

  private replaceLater(): void {
    const delay = this.replaceDelayMs;
    this.replaceDelayMs = Math.min(30_000, this.replaceDelayMs * 2);
    setTimeout(() => this.fill(), delay).unref();
  }

  private logWarmUp(worker: Worker, m: Extract<FromWorker, { type: 'gpu-warm-up' }>): void {
    if (m.error === undefined) {
      this.o.log?.info({ worker: worker.pid, device: m.device, seconds: m.seconds }, 'GPU warmed up');
    } else {
      this.o.log?.warn(
        { worker: worker.pid, device: m.device, error: m.error },
        'GPU warm-up failed: builds on this device set it up themselves, and fail with the reason if it stays unusable',
      );
    }
  }

  private send(worker: Worker, m: ToWorker): void {
    if (worker.child.connected) worker.child.send(m);
  }

  /** Ends a worker: it exits when its channel closes (worker.ts); killed if it has not after the settle time. */
  private retire(worker: Worker, reason: string): void {
    if (worker.state === 'retiring') return;
    worker.state = 'retiring';
    this.o.log?.[this.o.pool && !this.closing ? 'info' : 'debug'](
      { worker: worker.pid, jobs: worker.jobs, reason },
      'build worker retired',
    );
    if (worker.child.connected) worker.child.disconnect();
    const stuck = setTimeout(() => {
      this.o.log?.warn({ worker: worker.pid }, 'build worker did not exit when retired: killing it');
      worker.child.kill('SIGKILL');
    }, this.settleMs);
    stuck.unref();
    void worker.gone.then(() => clearTimeout(stuck));
  }

  /**
   * After a job: the worker frees what the job left (gc) and reports its resident memory ('ready'); it is kept
   * unless it ran WORKER_MAX_JOBS jobs, holds more than WORKER_MAX_IDLE_RSS (memory the admission budget,
   * which counts running jobs only, does not see), its job failed (a failed CUDA call can leave its context
   * unusable; a cancel that settled is not a failure of the worker), or more than `size` would be idle.
   */
  private afterJob(worker: Worker, ctx: BuildContext, failed: boolean): void {
    const pool = this.o.pool;
    if (!pool || this.closing)
      return this.retire(worker, pool ? 'the service is shutting down' : 'one job per process');
    if (failed && !ctx.signal.aborted) {
      this.retire(worker, 'its job failed');
      return this.fill();
    }
    worker.state = 'settling';
    worker.settleTimer = setTimeout(() => {
      worker.onReady = undefined;
      this.o.log?.warn(
        { worker: worker.pid },
        'build worker not ready some time after its job settled: killing it',
      );
      worker.state = 'retiring';
      worker.child.kill('SIGKILL');
      this.fill();
    }, this.settleMs);
    worker.settleTimer.unref();
    worker.onReady = (rssBytes) => {
      clearTimeout(worker.settleTimer);
      worker.onReady = undefined;
      const idle = [...this.workers].filter((w) => w.state === 'idle').length;
      const mib = Math.round(rssBytes / 2 ** 20);
      if (worker.jobs >= pool.maxJobs)
        this.retire(worker, `recycled after ${worker.jobs} jobs (WORKER_MAX_JOBS)`);
      else if (rssBytes > pool.maxIdleRssBytes)
        this.retire(worker, `holds ${mib} MiB after its job, over WORKER_MAX_IDLE_RSS`);
      else if (this.closing) this.retire(worker, 'the service is shutting down');
      else if (idle >= pool.size && this.waiting.length === 0)
        this.retire(worker, 'more idle workers than MAX_WORKERS');
      else {
        worker.state = 'idle';
        worker.primed = true;
        worker.lastUsed = performance.now();
        this.o.log?.info({ worker: worker.pid, jobs: worker.jobs, rssMiB: mib }, 'build worker ready');
        this.replaceDelayMs = REPLACE_DELAY_MS; // a job ran through: replacements are not crash-looping
        return this.offer(worker);
      }
      this.fill();
    };
  }

  /** Aborts the multipart uploads a worker that died left open (each logged; a failure is logged, not thrown). */
  private async abortLeftUploads(open: Map<string, ObjectLocation>, ctx: BuildContext): Promise<void> {
    const storage = this.o.config.storage;
    const abort = this.o.abortUpload ?? (storage.kind === 's3' ? abortWith(storage) : undefined);
    if (!abort || open.size === 0) return;
    await Promise.all(
      [...open].map(([uploadId, location]) =>
        abort(location, uploadId).then(
          () =>
            ctx.log.info(
              { uploadId, key: location.key },
              'aborted the upload its dead build worker left open',
            ),
          (e: unknown) =>
            ctx.log.warn(
              { uploadId, key: location.key, error: (e as Error).message },
              'could not abort the upload its dead build worker left open',
            ),
        ),
      ),
    );
  }

  private runOn(worker: Worker, ctx: BuildContext): Promise<BuildOutcome> {
    const { child } = worker;
    return new Promise<BuildOutcome>((resolve, reject) => {
      let settled = false;
      let phase = 'starting';
      let killedByUs = false;
      let killTimer: NodeJS.Timeout | undefined;
      let gpuRelease: (() => void) | undefined;
      const openUploads = new Map<string, ObjectLocation>();
      ctx.log.info(
        {
          worker: worker.pid,
          builder: ctx.plan.builder,
          ...(this.o.pool ? { workerJobs: worker.jobs } : {}),
        },
        'worker started',
      );

      const finish = (error: Error | null, outcome?: BuildOutcome) => {
        if (settled) return;
        settled = true;
        gpuRelease?.();
        ctx.signal.removeEventListener('abort', onAbort);
        worker.onMessage = undefined;
        worker.onClose = undefined;
        if (error) reject(error);
        else resolve(outcome!);
      };
      const onAbort = () => {
        const reason = (ctx.signal.reason as Error | undefined)?.message ?? 'cancelled';
        this.send(worker, { type: 'cancel', reason });
        killTimer = setTimeout(() => {
          killedByUs = true;
          ctx.log.warn({ worker: worker.pid }, 'cancelled build worker did not stop in time: killing it');
          child.kill('SIGKILL');
        }, this.cancelGraceMs);
        killTimer.unref();
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });

      worker.onMessage = (m) => {
        switch (m.type) {
          case 'progress':
            if (m.update.phase) phase = m.update.phase;
            ctx.report(m.update);
            break;
          case 'acquire-gpu':
            ctx.acquireGpu().then(
              (lease) => {
                if (settled) return lease.release();
                gpuRelease = lease.release;
                this.send(worker, { type: 'gpu', device: lease.device });
              },
              (e: unknown) =>
                this.send(worker, { type: 'cancel', reason: `no GPU lease: ${(e as Error).message}` }),
            );
            break;
          case 'release-gpu':
            gpuRelease?.();
            gpuRelease = undefined;
            break;
          case 'multipart':
            if (m.event.state === 'open') {
              openUploads.set(m.event.uploadId, m.event.location);
              // Its id in the log: if the whole service dies, a person (or the lifecycle rule) can abort it.
              ctx.log.info({ uploadId: m.event.uploadId, key: m.event.location.key }, 'index upload open');
            } else openUploads.delete(m.event.uploadId);
            break;
          case 'done':
            clearTimeout(killTimer);
            ctx.log.info(
              {
                seconds: m.result.seconds,
                wallSeconds: m.result.wallSeconds,
                overlap: m.result.overlap,
                stages: m.result.buildStages,
                format: m.result.format,
                upload: m.result.uploadPath.path,
                ...(m.result.uploadPath.reason ? { uploadReason: m.result.uploadPath.reason } : {}),
                bytesUploaded: m.result.bytesUploaded,
                bytesCopied: m.result.bytesCopied,
              },
              'build finished',
            );
            finish(null, { fileName: m.result.fileName, measurements: m.result });
            this.afterJob(worker, ctx, false);
            break;
          case 'failed':
            clearTimeout(killTimer);
            finish(new Error(m.message));
            this.afterJob(worker, ctx, true);
            break;
        }
      };
      worker.onClose = (code, signal) => {
        clearTimeout(killTimer);
        const error =
          ctx.signal.aborted || killedByUs
            ? new Error((ctx.signal.reason as Error | undefined)?.message ?? 'cancelled')
            : new Error(describeDeath(code, signal, phase, ctx.plan.hostBytes));
        this.fill(); // a warm pool gets a worker in its place
        // The job fails once nothing it wrote is left: the upload its worker could not close is aborted here.
        void this.abortLeftUploads(openUploads, ctx).then(() => finish(error));
      };
      this.send(worker, {
        type: 'start',
        jobId: ctx.id,
        request: ctx.request,
        builder: ctx.plan.builder,
        config: this.o.config,
      });
    });
  }
}

/** Aborts an upload through a store of its own (rare: a worker died with its index upload open). */
function abortWith(settings: Partial<StorageSettings>) {
  return async (at: ObjectLocation, uploadId: string): Promise<void> => {
    const store = createObjectStore(settings);
    try {
      await store.abortUpload!(at, uploadId);
    } finally {
      await store.close();
    }
  };
}

/** Words for a worker that died without reporting, by how it died. */
export function describeDeath(
  code: number | null,
  signal: NodeJS.Signals | null,
  phase: string,
  hostBytes: number,
): string {
  const gib = (hostBytes / 2 ** 30).toFixed(1);
  if (signal === 'SIGKILL') {
    return `the build worker was killed (SIGKILL) while ${phase}, most likely by the out-of-memory killer; the job was estimated to need ${gib} GiB of host memory: lower MAX_WORKERS or CPU_MEMORY_LIMIT, or give the service more memory`;
  }
  if (signal) {
    return `the build worker crashed (${signal}) while ${phase}; the service log has the worker's last lines (report this with the request)`;
  }
  return `the build worker exited with code ${code} while ${phase} without reporting a result; see the service log`;
}
