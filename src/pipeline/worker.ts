// A job's worker process: runs one pipeline (run-job.ts) and reports to the service over IPC. A native crash,
// an abort or an out-of-memory kill here ends only this process; the service fails just this job.
// Only the service decides a worker's fate: SIGINT/SIGTERM sent to the whole process group (Ctrl-C, systemd's
// KillMode=control-group, kill -TERM -<pgid>) are ignored so that the service can drain; and a worker whose
// service is gone (kill -9, a second signal) aborts its job and exits within PARENT_LOSS_GRACE_MS.
import { CpuBuilder } from '../builders/cpu.js';
import { GpuBuilder } from '../builders/gpu.js';
import { exitWithParent } from '../builders/native.js';
import type { BuilderKind, GraphBuilder } from '../builders/types.js';
import { formatPolicy } from '../faiss-format/policy.js';
import { createLogger } from '../logger.js';
import { createObjectStore } from '../storage/index.js';
import type { FromWorker, ToWorker } from './messages.js';
import { ioForRequest, runJob } from './run-job.js';

/** After losing the service: time to abort uploads and remove temp files before the process ends regardless. */
const PARENT_LOSS_GRACE_MS = 1000;

const abort = new AbortController();
let gpuGranted: ((device: number) => void) | undefined;
/** Set when this worker itself closes the channel after reporting (not a lost service). */
let reported = false;

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);

// A native thread watches the parent too: it works while the JS thread is busy or a native build runs.
const parentPid = process.ppid;
try {
  if (!exitWithParent(parentPid, PARENT_LOSS_GRACE_MS)) process.exit(70);
} catch (e) {
  process.stderr.write(`build worker: no parent watchdog (${(e as Error).message})\n`);
}

// Resolves when the last message sent has been written: disconnect() before that drops queued messages (seen
// under load as "worker exited with code 0 ... without reporting a result" for a job that had finished).
let lastSend: Promise<void> = Promise.resolve();

/** Never throws: after the channel closed (the service is gone or the job reported), there is nobody to tell. */
function send(message: FromWorker): void {
  if (!process.send || !process.connected) return;
  lastSend = new Promise((resolve) => process.send!(message, undefined, undefined, () => resolve()));
}

// Constructing a builder loads nothing: the addon (and CUDA) load on the first build.
function builders(threads: number): Record<BuilderKind, GraphBuilder> {
  return { cpu: new CpuBuilder({ threads }), gpu: new GpuBuilder({ threads }) };
}

async function start(m: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  const log = createLogger(m.config.logLevel).child({ jobId: m.jobId, worker: process.pid });
  const store = createObjectStore(m.config.storage);
  try {
    const result = await runJob(m.request, m.builder, {
      io: ioForRequest(store, m.request),
      builders: builders(m.config.threads),
      formatPolicy: formatPolicy(m.config.formatPolicy),
      buildDefaults: { threads: m.config.threads, gpu: m.config.gpu },
      ...(m.config.spoolDir ? { spoolDir: m.config.spoolDir } : {}),
      signal: abort.signal,
      report: (update) => send({ type: 'progress', update }),
      acquireGpu: () =>
        new Promise((resolve) => {
          gpuGranted = (device) => resolve({ device, release: () => send({ type: 'release-gpu' }) });
          send({ type: 'acquire-gpu' });
        }),
    });
    log.info({ ...result }, 'pipeline finished');
    reported = true;
    send({ type: 'done', result });
  } catch (e) {
    const message = abort.signal.aborted
      ? String((abort.signal.reason as Error)?.message ?? 'cancelled')
      : errorText(e);
    log.warn({ error: message }, 'pipeline failed');
    reported = true;
    send({ type: 'failed', message });
  } finally {
    await store.close().catch(() => undefined);
    await lastSend;
    if (process.connected) process.disconnect();
    // Exit even if a library left a handle open (e.g. a keep-alive socket); unref'd, so it never delays.
    setTimeout(() => process.exit(0), 2000).unref();
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message || e.name : String(e);
}

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'start':
      void start(m);
      break;
    case 'gpu':
      gpuGranted?.(m.device);
      break;
    case 'cancel':
      abort.abort(new Error(m.reason));
      break;
  }
});
// The service went away: nobody is left to report to. Abort (uploads and temp files are cleaned up), then end
// the process even if a native build is still running (process.exit would wait for the libuv pool).
process.on('disconnect', () => {
  if (reported) return;
  abort.abort(new Error('the service disconnected'));
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), PARENT_LOSS_GRACE_MS).unref();
});
