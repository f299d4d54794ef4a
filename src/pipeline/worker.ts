// A build worker process: runs jobs' pipelines (run-job.ts) one at a time and reports to the service over IPC
// (messages.ts). A native crash, an abort or an out-of-memory kill here ends only this process; the service fails
// just the job it ran and starts another worker. After each job it frees what the job left (gc) and says it is
// ready; the service ends it by closing the channel (src/jobs/process-build.ts decides when).
// Only the service decides a worker's fate: SIGINT/SIGTERM sent to the whole process group (Ctrl-C, systemd's
// KillMode=control-group, kill -TERM -<pgid>) are ignored so that the service can drain; and a worker whose
// service is gone (kill -9, a second signal) aborts its job and exits within PARENT_LOSS_GRACE_MS.
import { setTimeout as sleep } from 'node:timers/promises';

import { CpuBuilder } from '../builders/cpu.js';
import { GpuBuilder } from '../builders/gpu.js';
import { exitWithParent, gpuWarmUp } from '../builders/native.js';
import type { BuilderKind, GraphBuilder } from '../builders/types.js';
import { formatPolicy } from '../faiss-format/policy.js';
import { createLogger } from '../logger.js';
import { createObjectStore } from '../storage/index.js';
import type { FromWorker, ToWorker } from './messages.js';
import { ioForRequest, runJob } from './run-job.js';

/** After losing the service: time to abort uploads and remove temp files before the process ends regardless. */
const PARENT_LOSS_GRACE_MS = 1000;

/** The job running now (one at a time), and how to stop it. */
let current: { abort: AbortController; reported: boolean } | undefined;
let gpuGranted: ((device: number) => void) | undefined;
/** The GPU warm-up, which a GPU job waits for (its build would otherwise set the device up a second time). */
let warming: Promise<void> = Promise.resolve();

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);

// A native thread watches the parent too: it works while the JS thread is busy or a native build runs.
const parentPid = process.ppid;
try {
  if (!exitWithParent(parentPid, PARENT_LOSS_GRACE_MS)) process.exit(70);
} catch (e) {
  process.stderr.write(`build worker: no parent watchdog (${(e as Error).message})\n`);
}

/**
 * Never throws: after the channel closed (the service is gone, or retired this worker as its job reported) there
 * is nobody to tell. The callback takes a failed write (EPIPE while the channel closes), which would otherwise be
 * an 'error' event that ends the process.
 */
function send(message: FromWorker): void {
  if (!process.send || !process.connected) return;
  process.send(message, undefined, undefined, () => undefined);
}

// Constructing a builder loads nothing: the addon (and CUDA) load on the first build.
function builders(threads: number): Record<BuilderKind, GraphBuilder> {
  return { cpu: new CpuBuilder({ threads }), gpu: new GpuBuilder({ threads }) };
}

async function warmUp(gpus: number[]): Promise<void> {
  for (const device of gpus) {
    try {
      send({ type: 'gpu-warm-up', device, seconds: await gpuWarmUp(device) });
    } catch (e) {
      send({ type: 'gpu-warm-up', device, error: errorText(e) });
    }
  }
}

async function start(m: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  const log = createLogger(m.config.logLevel).child({ jobId: m.jobId, worker: process.pid });
  if (current) {
    // The service sends one job at a time; a second one is a bug there, and must not disturb the first.
    send({
      type: 'failed',
      message: 'internal error: the build worker was given a job while running another',
    });
    return;
  }
  const abort = new AbortController();
  const job = { abort, reported: false };
  current = job;
  const store = createObjectStore(m.config.storage);
  try {
    if (m.builder === 'gpu') await warming;
    const result = await runJob(m.request, m.builder, {
      io: ioForRequest(store, m.request),
      builders: builders(m.config.threads),
      formatPolicy: formatPolicy(m.config.formatPolicy),
      buildDefaults: { threads: m.config.threads, gpu: m.config.gpu },
      ...(m.config.spoolDir ? { spoolDir: m.config.spoolDir } : {}),
      ...(m.config.copyStoredVectors === false ? { copyStoredVectors: false } : {}),
      signal: abort.signal,
      report: (update) => send({ type: 'progress', update }),
      onMultipart: (event) => send({ type: 'multipart', event }),
      acquireGpu: () =>
        new Promise((resolve) => {
          gpuGranted = (device) => resolve({ device, release: () => send({ type: 'release-gpu' }) });
          send({ type: 'acquire-gpu' });
        }),
    });
    log.info({ ...result }, 'pipeline finished');
    job.reported = true;
    send({ type: 'done', result });
  } catch (e) {
    const message = abort.signal.aborted
      ? String((abort.signal.reason as Error)?.message ?? 'cancelled')
      : errorText(e);
    log.warn({ error: message }, 'pipeline failed');
    job.reported = true;
    send({ type: 'failed', message });
  } finally {
    await store.close().catch(() => undefined);
    current = undefined;
    gpuGranted = undefined;
    // The job's buffers (GBs for a large build) are garbage now: collect them before saying ready, so that an idle
    // worker holds only its baseline (the memory budget counts running jobs only), and the RSS reported is real.
    (globalThis as { gc?: () => void }).gc?.();
    send({ type: 'ready', rssBytes: await settledRss() });
  }
}

/**
 * Resident memory once what gc() freed is gone. V8 releases large ArrayBuffers' memory on a background thread
 * after a collection: right after gc() a worker that held 3 GB of vectors still shows most of them (the pool
 * would retire it as over WORKER_MAX_IDLE_RSS after every large job). Waits until two readings 50 ms apart
 * agree within 16 MiB, at most 2 s.
 */
async function settledRss(): Promise<number> {
  let last = process.memoryUsage.rss();
  for (let waited = 0; waited < 2000; waited += 50) {
    await sleep(50);
    const now = process.memoryUsage.rss();
    if (waited > 0 && last - now < 16 * 2 ** 20) return now;
    last = now;
  }
  return last;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message || e.name : String(e);
}

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'warm-up':
      warming = warmUp(m.gpus);
      break;
    case 'start':
      void start(m);
      break;
    case 'gpu':
      gpuGranted?.(m.device);
      break;
    case 'cancel':
      current?.abort.abort(new Error(m.reason));
      break;
  }
});
// The channel closed. Between jobs, the service retired this worker: exit (even if a library left a handle open,
// e.g. a keep-alive socket). During a job the service went away: nobody is left to report to. Abort (uploads
// and temp files are cleaned up), then end the process even if a native build is still running (process.exit
// would wait for the libuv pool).
// Retired before it had started (the channel closed before the listener below existed): nothing to wait for.
if (!process.connected) process.exit(0);
process.on('disconnect', () => {
  if (!current || current.reported) {
    // Time for the job's clean-up (closing the store) to finish; unref'd, so it never delays a natural exit.
    setTimeout(() => process.exit(0), 2000).unref();
    return;
  }
  current.abort.abort(new Error('the service disconnected'));
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), PARENT_LOSS_GRACE_MS).unref();
});
