// The real service (src/main.ts: settings, signals, worker processes) as a child process in its own process
// group, for tests that send signals (kill -TERM -<pgid>, kill -9) and look at the processes left behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { tsxExecArgv } from '../../src/tsx-loader.js';
import { knnBuildBody } from './knn-client.js';
import { REPO_ROOT } from './python.js';
import { uniform } from './synthetic.js';

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  /** Everything it wrote (JSON log lines; its workers share its stdout and stderr). */
  output(): string;
  /** Resolves with [code, signal] when the service process exits. */
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** Waits until the output matches `pattern`; returns the match. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** The pids of the worker processes it started (from its log). */
  workerPids(): number[];
  /** SIGKILLs the whole group (the service and anything left of its workers). */
  killAll(): void;
}

/** Starts `node src/main.ts` (through tsx) with the CPU builder, the given settings and PORT=0. */
export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [...tsxExecArgv(), path.join(REPO_ROOT, 'src/main.ts')], {
    cwd: REPO_ROOT,
    detached: true, // its own process group, as a shell or systemd would start it
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      BUILDER: 'cpu',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (code, signal) => resolve([code, signal])),
  );
  let gone = false;
  void exited.then(() => (gone = true));

  const waitFor = async (pattern: RegExp, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(out);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no ${pattern} in the service output:\n${out.slice(-4000)}`);
      await sleep(20);
    }
  };
  const started = await Promise.race([
    waitFor(/"address":\{[^}]*"port":(\d+)/),
    exited.then(() => {
      throw new Error(`the service exited at start:\n${out}`);
    }),
  ]);
  const pid = child.pid!;
  return {
    child,
    pid,
    url: `http://127.0.0.1:${started[1]}`,
    output: () => out,
    exited,
    waitFor,
    workerPids: () =>
      [...out.matchAll(/"worker":(\d+),[^\n]*"msg":"worker started"/g)].map((m) => Number(m[1])),
    killAll: () => {
      if (gone) return;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

/** Whether a process is alive (a zombie, exited but not yet reaped, counts as gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Waits until none of `pids` is alive; returns the milliseconds it took, or -1 after `timeoutMs`. */
export async function allGone(pids: readonly number[], timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (pids.some(isAlive)) {
    if (Date.now() - start > timeoutMs) return -1;
    await sleep(25);
  }
  return Date.now() - start;
}

/**
 * Writes a float segment (`<key>.knnvec` + `<key>.knndid`) of `count` random `dimension`-d vectors into
 * `root/container`, and returns the k-NN build body for it.
 */
export function writeLocalSegment(
  root: string,
  container: string,
  key: string,
  count: number,
  dimension: number,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const dir = path.join(root, container, path.dirname(key));
  mkdirSync(dir, { recursive: true });
  const next = uniform(count * 7 + dimension);
  const vectors = Float32Array.from({ length: count * dimension }, () => next());
  const ids = Int32Array.from({ length: count }, (_, i) => i);
  writeFileSync(path.join(root, container, `${key}.knnvec`), new Uint8Array(vectors.buffer));
  writeFileSync(path.join(root, container, `${key}.knndid`), new Uint8Array(ids.buffer));
  return knnBuildBody({
    container_name: container,
    vector_path: `${key}.knnvec`,
    doc_id_path: `${key}.knndid`,
    tenant_id: 'test',
    dimension,
    doc_count: count,
    ...overrides,
  });
}
