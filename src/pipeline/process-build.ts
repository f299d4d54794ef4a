// The service side of job isolation: every job runs its pipeline in a child process (worker.ts). Progress and
// GPU leases travel over IPC; cancel asks the worker to stop (aborting its uploads) and kills it if it does not;
// a worker that dies (native crash, abort, OOM kill) fails only its own job, with a message that says how.
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { BuildContext, BuildFn, BuildOutcome } from '../jobs/scheduler.js';
import type { FromWorker, ToWorker, WorkerConfig } from './messages.js';
import { tsxExecArgv } from '../tsx-loader.js';

/** How long a cancelled worker may take to abort its uploads and exit before it is killed. */
const CANCEL_GRACE_MS = 5_000;
/** How long a worker may take to exit after its job settled (it normally needs well under a second). */
const EXIT_AFTER_SETTLED_MS = 10_000;

/** Workers alive now: killed with the service if it exits without draining (a second signal, a crash). */
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

export interface ProcessBuildOptions {
  config: WorkerConfig;
  /** Tests: another worker program, and how long it may live on after its job settled. */
  worker?: { file: string; execArgv: string[]; exitAfterSettledMs?: number };
}

/** The worker entry next to this file: worker.ts under tsx (dev, tests), worker.js when compiled. */
function workerEntry(): { file: string; execArgv: string[] } {
  const ts = fileURLToPath(new URL('./worker.ts', import.meta.url));
  if (import.meta.url.endsWith('.ts') && existsSync(ts)) return { file: ts, execArgv: tsxExecArgv() };
  return { file: fileURLToPath(new URL('./worker.js', import.meta.url)), execArgv: [] };
}

export function createProcessBuild(o: ProcessBuildOptions): BuildFn {
  const entry = o.worker ?? workerEntry();
  return (ctx) => runInWorker(ctx, entry, o);
}

function runInWorker(
  ctx: BuildContext,
  entry: { file: string; execArgv: string[] },
  o: ProcessBuildOptions,
): Promise<BuildOutcome> {
  return new Promise<BuildOutcome>((resolve, reject) => {
    const child: ChildProcess = fork(entry.file, [], {
      execArgv: entry.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    track(child);
    let settled = false;
    let phase = 'starting';
    let killedByUs = false;
    let killTimer: NodeJS.Timeout | undefined;
    let gpuRelease: (() => void) | undefined;
    ctx.log.info({ worker: child.pid, builder: ctx.plan.builder }, 'worker started');

    const finish = (error: Error | null, outcome?: BuildOutcome) => {
      if (settled) return;
      settled = true;
      gpuRelease?.();
      ctx.signal.removeEventListener('abort', onAbort);
      // A worker stuck after its job settled (e.g. a thread blocked in the kernel) must not live on unseen.
      if (child.exitCode === null && child.signalCode === null) {
        const stuck = setTimeout(() => {
          ctx.log.warn({ worker: child.pid }, 'worker did not exit after its job settled: killing it');
          child.kill('SIGKILL');
        }, o.worker?.exitAfterSettledMs ?? EXIT_AFTER_SETTLED_MS);
        stuck.unref();
        child.once('exit', () => clearTimeout(stuck));
      }
      if (error) reject(error);
      else resolve(outcome!);
    };
    const send = (m: ToWorker) => {
      if (child.connected) child.send(m);
    };
    const onAbort = () => {
      const reason = (ctx.signal.reason as Error | undefined)?.message ?? 'cancelled';
      send({ type: 'cancel', reason });
      killTimer = setTimeout(() => {
        killedByUs = true;
        child.kill('SIGKILL');
      }, CANCEL_GRACE_MS);
      killTimer.unref();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });

    child.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'progress':
          if (m.update.phase) phase = m.update.phase;
          ctx.report(m.update);
          break;
        case 'acquire-gpu':
          ctx.acquireGpu().then(
            (lease) => {
              gpuRelease = lease.release;
              send({ type: 'gpu', device: lease.device });
            },
            (e: unknown) => {
              send({ type: 'cancel', reason: `no GPU lease: ${(e as Error).message}` });
            },
          );
          break;
        case 'release-gpu':
          gpuRelease?.();
          gpuRelease = undefined;
          break;
        case 'done':
          ctx.log.info(
            {
              seconds: m.result.seconds,
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
          break;
        case 'failed':
          finish(new Error(m.message));
          break;
      }
    });
    child.on('error', (e) => finish(new Error(`could not run the build worker: ${e.message}`)));
    // 'close', not 'exit': it comes after the IPC channel has delivered every message, so a worker that reported
    // and then exited is never taken for one that died (under load 'exit' can overtake the last messages).
    child.on('close', (code, signal) => {
      clearTimeout(killTimer);
      if (settled) return;
      if (ctx.signal.aborted || killedByUs) {
        finish(new Error((ctx.signal.reason as Error | undefined)?.message ?? 'cancelled'));
      } else {
        finish(new Error(describeDeath(code, signal, phase, ctx.plan.hostBytes)));
      }
    });
    send({ type: 'start', jobId: ctx.id, request: ctx.request, builder: ctx.plan.builder, config: o.config });
  });
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
