// Service replicas as separate processes (`node src/main.ts` under tsx, as `npm run dev` runs it), sharing one
// Redis (QUEUE_BACKEND=redis) and the S3 test server: for scale-out tests that kill a replica with SIGKILL.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

import { tsxExecArgv } from '../../src/tsx-loader.js';
import { freePort } from './redis-server.js';
import type { S3TestServer } from './s3-server.js';

const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');

export interface LogRecord {
  msg?: string;
  jobId?: string;
  worker?: number;
  replica?: string;
  [key: string]: unknown;
}

export class Replica {
  readonly logs: string[] = [];
  url = '';
  private exited: Promise<void>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      this.logs.push(...lines.filter(Boolean));
    });
    child.stderr!.on('data', (d: Buffer) => this.logs.push(JSON.stringify({ stderr: d.toString() })));
    this.exited = new Promise((r) => child.once('exit', () => r()));
  }

  static async start(name: string, env: Record<string, string>): Promise<Replica> {
    const port = await freePort();
    const child = spawn(process.execPath, [...tsxExecArgv(), MAIN], {
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        LOG_LEVEL: 'info',
        REPLICA_NAME: name,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r = new Replica(name, child);
    r.url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const up = await fetch(`${r.url}/_heart_beat`).then(
        (res) => res.ok,
        () => false,
      );
      if (up) return r;
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`replica ${name} did not start:\n${r.logs.slice(-20).join('\n')}`);
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  records(): LogRecord[] {
    const out: LogRecord[] = [];
    for (const line of this.logs) {
      try {
        out.push(JSON.parse(line) as LogRecord);
      } catch {
        // not a log line
      }
    }
    return out;
  }

  /** kill -9: the replica vanishes without a word (its build workers see the disconnect and stop). */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM and wait (SIGKILL after `ms`). */
  async stop(ms = 15_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
  }
}

/** The environment that points a replica at the S3 test server with the CPU builder. */
export function replicaEnv(s3: S3TestServer, redisUrl: string, extra: Record<string, string> = {}) {
  return {
    QUEUE_BACKEND: 'redis',
    REDIS_URL: redisUrl,
    OBJECT_STORE: 's3',
    S3_ENDPOINT_URL: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_DEFAULT_REGION: s3.region,
    S3_CHECKSUMS: 'md5',
    S3_RETRY_BASE_DELAY_MS: '10',
    BUILDER: 'cpu',
    BUILD_THREADS: '1',
    MAX_WORKERS: '2',
    ...extra,
  };
}

/** Starts `count` replicas named r1, r2, ... in parallel. */
export async function startReplicas(count: number, env: Record<string, string>): Promise<Replica[]> {
  const results = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => Replica.start(`r${i + 1}`, env)),
  );
  const failed = results.find((r) => r.status === 'rejected');
  if (!failed) return results.map((r) => (r as PromiseFulfilledResult<Replica>).value);
  // Leave nothing running when one of them could not start.
  await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
  throw failed.reason;
}

/** The pid of the build worker that runs `jobId`, and the replica that started it (from the replicas' logs). */
export async function workerOf(
  replicas: Replica[],
  jobId: string,
  timeoutMs = 10_000,
): Promise<{ replica: Replica; pid: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const replica of replicas) {
      const rec = replica.records().find((l) => l.jobId === jobId && l.msg === 'worker started' && l.worker);
      if (rec) return { replica, pid: rec.worker! };
    }
    if (Date.now() > deadline) throw new Error(`no worker started for ${jobId}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
