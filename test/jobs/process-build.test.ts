// The service side of the build workers (src/jobs/process-build.ts), with real processes: a test worker that
// speaks the real protocol and misbehaves on request (fixtures/pool-worker.ts), and the real worker.ts running
// real CPU builds through the real service.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  type ProcessBuild,
  type ProcessBuildOptions,
  createProcessBuild,
} from '../../src/jobs/process-build.js';
import type { BuildContext } from '../../src/jobs/scheduler.js';
import { tsxExecArgv } from '../../src/tsx-loader.js';
import { KnnClient } from '../helpers/knn-client.js';
import { jobSpecFor } from '../helpers/job-spec.js';
import { startRealService } from '../helpers/real-service.js';
import { allGone, writeLocalSegment } from '../helpers/service-process.js';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/pool-worker.ts');
const CONFIG: ProcessBuildOptions['config'] = {
  storage: { kind: 'local', localRoot: '.' },
  formatPolicy: 'compatible',
  threads: 1,
  gpu: { memoryLimitBytes: 2 ** 30, knnAlgorithm: 'auto' },
  logLevel: 'silent',
};
const POOL = { size: 1, maxJobs: 100, maxIdleRssBytes: 2 ** 40 };

let open: ProcessBuild[] = [];
const lines: string[] = [];
const log = pino({ level: 'debug' }, { write: (l: string) => lines.push(l) });

/** A pool of test workers (pool: absent = one process per job). */
function testPool(
  o: Partial<ProcessBuildOptions> = {},
  waits: { settleMs?: number; cancelGraceMs?: number } = {},
) {
  const build = createProcessBuild({
    config: CONFIG,
    log,
    worker: { file: FIXTURE, execArgv: tsxExecArgv(), ...waits },
    ...o,
  });
  open.push(build);
  return build;
}

/** A job whose test worker behaves as `behaviour` says (see fixtures/pool-worker.ts). */
function job(behaviour: string, signal = new AbortController().signal): BuildContext {
  return {
    id: `job-${behaviour}`,
    request: jobSpecFor({ vector_path: behaviour }),
    plan: { builder: 'cpu', hostBytes: 2 ** 30, gpuBytes: 0, reason: 'test' },
    attempt: 1,
    signal,
    log,
    report: () => undefined,
    acquireGpu: () => Promise.reject(new Error('no GPU')),
  };
}

/** The pid of the test worker that ran a job ("<pid>.faiss"). */
async function pidOf(p: Promise<{ fileName: string }>): Promise<number> {
  return Number((await p).fileName.replace('.faiss', ''));
}

/** Waits until `build` has `count` workers, none of them in `not`. */
async function poolOf(build: ProcessBuild, count: number, not: number[] = []): Promise<number[]> {
  for (let i = 0; i < 200; i++) {
    const pids = build.pids();
    if (pids.length === count && !pids.some((p) => not.includes(p))) return pids;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(
    `the pool has ${JSON.stringify(build.pids())}, expected ${count} without ${JSON.stringify(not)}`,
  );
}

afterEach(async () => {
  const pids = open.flatMap((b) => b.pids());
  await Promise.all(open.map((b) => b.close()));
  open = [];
  expect(await allGone(pids, 5000)).toBeGreaterThanOrEqual(0); // no worker left behind
  lines.length = 0;
});

describe('warm worker pool', () => {
  it('starts its workers at once and runs the next job in the same process', async () => {
    const build = testPool({ pool: POOL });
    const [started] = await poolOf(build, 1);
    const outcome = await build(job('ok'));
    // The worker's measurements come back with the outcome (the scheduler hands them to the metrics).
    expect(outcome.measurements).toMatchObject({
      fileName: outcome.fileName,
      builder: 'cpu',
      format: 'test',
    });
    const first = Number(outcome.fileName.replace('.faiss', ''));
    const second = await pidOf(build(job('ok')));
    expect([first, second]).toEqual([started, started]);
  });

  it('fails only the job of a worker that crashes, with how it died, and replaces the worker', async () => {
    const build = testPool({ pool: POOL });
    const [crashed] = await poolOf(build, 1);
    await expect(build(job('crash'))).rejects.toThrow(
      /the build worker crashed \(SIGSEGV\) while building; the service log has the worker's last lines/,
    );
    const [replacement] = await poolOf(build, 1, [crashed!]);
    expect(await pidOf(build(job('ok')))).toBe(replacement);
  });

  it('aborts the multipart upload a crashed worker left open before failing its job', async () => {
    const aborted: string[] = [];
    const build = testPool({
      pool: POOL,
      abortUpload: async (at, uploadId) => {
        await new Promise((r) => setTimeout(r, 100)); // the job fails only after this
        aborted.push(`${at.container}/${at.key} ${uploadId}`);
      },
    });
    await expect(build(job('upload-crash'))).rejects.toThrow(/crashed \(SIGSEGV\)/);
    expect(aborted).toEqual(['bucket/seg/x.faiss left-open']);
    expect(lines.join('\n')).toContain('aborted the upload its dead build worker left open');
  });

  it('keeps a worker whose cancelled job settled within the grace', async () => {
    const build = testPool({ pool: POOL });
    const [pid] = await poolOf(build, 1);
    const abort = new AbortController();
    const running = build(job('wait-cancel', abort.signal));
    setTimeout(() => abort.abort(new Error('cancelled by the test')), 100);
    await expect(running).rejects.toThrow('cancelled by the test');
    expect(await pidOf(build(job('ok')))).toBe(pid);
  });

  it('kills and replaces a worker whose cancelled job does not settle within the grace', async () => {
    const build = testPool({ pool: POOL }, { cancelGraceMs: 300 });
    const [stuck] = await poolOf(build, 1);
    const abort = new AbortController();
    const running = build(job('ignore-cancel', abort.signal));
    setTimeout(() => abort.abort(new Error('cancelled by the test')), 100);
    await expect(running).rejects.toThrow('cancelled by the test');
    expect(await allGone([stuck!], 5000)).toBeGreaterThanOrEqual(0);
    const [replacement] = await poolOf(build, 1, [stuck!]);
    expect(await pidOf(build(job('ok')))).toBe(replacement);
    expect(lines.join('\n')).toContain('cancelled build worker did not stop in time: killing it');
  });

  it('replaces a worker after WORKER_MAX_JOBS jobs', async () => {
    const build = testPool({ pool: { ...POOL, maxJobs: 2 } });
    const a = await pidOf(build(job('ok')));
    const b = await pidOf(build(job('ok')));
    expect(b).toBe(a);
    await poolOf(build, 1, [a]);
    const c = await pidOf(build(job('ok')));
    expect(c).not.toBe(a);
    expect(await allGone([a], 5000)).toBeGreaterThanOrEqual(0);
    expect(lines.join('\n')).toContain('recycled after 2 jobs (WORKER_MAX_JOBS)');
  });

  it('gives a job to a worker that is set up, not to a replacement still warming up its GPU', async () => {
    // Two warm workers; the one that ran a job is recycled and its replacement warms up for 10 s. The next job
    // goes to the other warm worker (not the newest worker, which would make it wait for the set-up).
    try {
      const build = testPool({ pool: { ...POOL, size: 2, maxJobs: 1 }, warmGpus: [0] });
      const first = await poolOf(build, 2);
      process.env.POOL_WORKER_SLOW_WARM_UP = '1'; // workers started from now on warm up slowly
      const a = await pidOf(build(job('ok')));
      const now = await poolOf(build, 2, [a]);
      const replacement = now.find((p) => !first.includes(p))!;
      const b = await pidOf(build(job('ok')));
      expect(first).toContain(b);
      expect(b).not.toBe(replacement);
    } finally {
      delete process.env.POOL_WORKER_SLOW_WARM_UP;
    }
  });

  it('replaces a worker that holds more than WORKER_MAX_IDLE_RSS after its job', async () => {
    const build = testPool({ pool: { ...POOL, maxIdleRssBytes: 1 } });
    const a = await pidOf(build(job('ok')));
    await poolOf(build, 1, [a]);
    expect(await pidOf(build(job('ok')))).not.toBe(a);
    expect(lines.join('\n')).toMatch(/holds \d+ MiB after its job, over WORKER_MAX_IDLE_RSS/);
  });

  it('replaces a worker whose job failed (its native state may be broken)', async () => {
    const build = testPool({ pool: POOL });
    const [pid] = await poolOf(build, 1);
    await expect(build(job('fail'))).rejects.toThrow('the test build failed');
    await poolOf(build, 1, [pid!]);
    expect(await pidOf(build(job('ok')))).not.toBe(pid);
  });

  it('kills a worker that is not ready some time after its job settled', async () => {
    const build = testPool({ pool: POOL }, { settleMs: 500 });
    const pid = await pidOf(build(job('never-ready')));
    expect(await allGone([pid], 5000)).toBeGreaterThanOrEqual(0); // was: alive for good
    expect(lines.join('\n')).toContain('build worker not ready some time after its job settled: killing it');
    await poolOf(build, 1, [pid]);
  });

  it('replaces an idle worker that dies', async () => {
    const build = testPool({ pool: POOL });
    const [pid] = await poolOf(build, 1);
    process.kill(pid!, 'SIGKILL');
    await poolOf(build, 1, [pid!]);
    expect(lines.join('\n')).toContain('idle build worker died: starting another');
  });

  it('ends every worker on close', async () => {
    const build = testPool({ pool: { ...POOL, size: 3 } });
    const pids = await poolOf(build, 3);
    await build.close();
    expect(await allGone(pids, 5000)).toBeGreaterThanOrEqual(0);
    expect(build.pids()).toEqual([]);
  });
});

describe('one process per job (WARM_WORKERS=false)', () => {
  it('starts no worker before a job and gives every job a fresh process that exits after it', async () => {
    const build = testPool({}, { settleMs: 500 });
    expect(build.pids()).toEqual([]);
    const a = await pidOf(build(job('ok')));
    const b = await pidOf(build(job('ok')));
    expect(b).not.toBe(a);
    expect(await allGone([a, b], 5000)).toBeGreaterThanOrEqual(0);
    await new Promise((r) => setTimeout(r, 700)); // past the settle time: a worker that exited is not "killed"
    expect(lines.join('\n')).not.toContain('did not exit when retired');
  });

  it('kills a worker that has not exited some time after its job settled', async () => {
    const build = testPool({}, { settleMs: 500 });
    const pid = await pidOf(build(job('never-ready')));
    expect(await allGone([pid], 5000)).toBeGreaterThanOrEqual(0); // was: alive for good
    expect(lines.join('\n')).toContain('build worker did not exit when retired: killing it');
  });
});

describe('real build workers in the real service', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'warm-workers-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('runs two CPU builds in one warm worker and ends it when the service shuts down', async () => {
    const svc = await startRealService({ kind: 'local', localRoot: root }, { MAX_WORKERS: '1' });
    const client = new KnnClient({ endpoint: svc.url });
    try {
      for (const key of ['seg/a', 'seg/b']) {
        const id = await client.build(writeLocalSegment(root, 'bucket', key, 500, 8));
        expect(await client.poll(id, { intervalMs: 50 })).toMatchObject({
          task_status: 'COMPLETED_INDEX_BUILD',
        });
      }
    } finally {
      await svc.close();
    }
    const pids = svc.logs
      .filter((l) => l.includes('"msg":"worker started"'))
      .map((l) => (JSON.parse(l) as { worker: number }).worker);
    expect(pids).toHaveLength(2);
    expect(pids[1]).toBe(pids[0]);
    expect(await allGone(pids, 5000)).toBeGreaterThanOrEqual(0);
  });
});
