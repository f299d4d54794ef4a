// Graceful shutdown: no new builds (503 + Retry-After), _status keeps answering, running jobs finish within the
// grace period, queued ones fail with a clear message; and the real process exits 0 on SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { KnnClient, knnBuildBody } from '../helpers/knn-client.js';
import { REPO_ROOT } from '../helpers/python.js';
import { type TestService, startTestService } from '../helpers/service.js';
import { tsxExecArgv } from '../../src/tsx-loader.js';

const body = (i: number) => knnBuildBody({ vector_path: `p/${i}.knnvec`, doc_id_path: `p/${i}.knndid` });

describe('graceful shutdown (in process)', () => {
  let t: TestService;
  afterEach(async () => t.close().catch(() => undefined));

  it('drains: 503 for new builds, status still answered, running job finishes, queued job fails', async () => {
    t = await startTestService({ MAX_WORKERS: '1', SHUTDOWN_STATUS_LINGER_SECONDS: '0' });
    const client = new KnnClient({ endpoint: t.url, maxRetryWaitMs: 10 });
    const running = await client.build(body(1));
    const queued = await client.build(body(2));
    await t.builds.started(1);

    const done = t.service.shutdown(60_000);
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body(3)),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('10');
    expect((await client.status(running)).task_status).toBe('RUNNING_INDEX_BUILD');
    const q = await client.status(queued);
    expect(q.task_status).toBe('FAILED_INDEX_BUILD');
    expect(q.error_message).toMatch(/shut down before this build started; send the build again/);

    t.builds.complete(running);
    await done;
    expect(t.service.store.get(running)!.status).toBe('COMPLETED_INDEX_BUILD');
    expect(t.builds.calls).toHaveLength(1);
  });

  it('fails a build still running when the grace period ends, and stops it', async () => {
    t = await startTestService({ SHUTDOWN_STATUS_LINGER_SECONDS: '0' });
    const client = new KnnClient({ endpoint: t.url });
    const id = await client.build(body(1));
    await t.builds.started(1);
    await t.service.shutdown(100);
    const job = t.service.store.get(id)!;
    expect(job.status).toBe('FAILED_INDEX_BUILD');
    expect(job.errorMessage).toMatch(/grace period of 0 s ended/);
    expect(t.builds.isRunning(id)).toBe(false);
  });
});

describe('status linger after the drain (SHUTDOWN_STATUS_LINGER_SECONDS)', () => {
  let t: TestService;
  afterEach(async () => t.close().catch(() => undefined));

  const settled = (p: Promise<unknown>) => {
    let done = false;
    void p.then(() => (done = true));
    return () => done;
  };

  it('keeps answering _status after the last job completed, until the client has read COMPLETED', async () => {
    t = await startTestService({ SHUTDOWN_STATUS_LINGER_SECONDS: '30' });
    const client = new KnnClient({ endpoint: t.url });
    const id = await client.build(body(1));
    await t.builds.started(1);
    const isDone = settled(t.service.shutdown(60_000));
    t.builds.complete(id);
    await new Promise((r) => setTimeout(r, 500));
    expect(isDone()).toBe(false); // before the fix the server closed the moment the job completed
    expect(await client.status(id)).toMatchObject({ task_status: 'COMPLETED_INDEX_BUILD' });
    const deadline = Date.now() + 5000;
    while (!isDone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(isDone()).toBe(true); // and it stops lingering once the final status was read
    expect(t.logs.join('\n')).toContain('waiting for clients to read the final status');
  });

  it('stops lingering after SHUTDOWN_STATUS_LINGER_SECONDS when nobody polls', async () => {
    t = await startTestService({ SHUTDOWN_STATUS_LINGER_SECONDS: '1' });
    const client = new KnnClient({ endpoint: t.url });
    const id = await client.build(body(1));
    await t.builds.started(1);
    const isDone = settled(t.service.shutdown(60_000));
    t.builds.complete(id);
    await new Promise((r) => setTimeout(r, 400));
    expect(isDone()).toBe(false);
    await new Promise((r) => setTimeout(r, 1200));
    expect(isDone()).toBe(true);
  });
});

describe('graceful shutdown (real process, SIGTERM)', () => {
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill('SIGKILL'));

  it('finishes the job in flight, answers _status meanwhile, and exits 0', async () => {
    child = spawn(
      process.execPath,
      [...tsxExecArgv(), path.join(REPO_ROOT, 'test/fixtures/service-with-double.ts')],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          PORT: '0',
          HOST: '127.0.0.1',
          BUILD_DOUBLE_MS: '1500',
          BUILDER: 'cpu',
          LOG_LEVEL: 'info',
          SHUTDOWN_STATUS_LINGER_SECONDS: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        const m = /LISTENING (\d+)/.exec(out);
        if (m) {
          clearInterval(timer);
          resolve(Number(m[1]));
        }
      }, 20);
      void exited.then(() => reject(new Error(`service exited early:\n${out}`)));
    });
    const client = new KnnClient({ endpoint: `http://127.0.0.1:${port}`, maxRetryWaitMs: 10 });
    const id = await client.build(body(1));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    expect((await client.status(id)).task_status).toBe('RUNNING_INDEX_BUILD');
    expect(await exited).toBe(0);
    expect(out).toContain('job completed');
    expect(out).toContain('"msg":"shut down"');
  });
});
