// QUEUE_BACKEND=redis with a real redis-server on loopback and BullMQ, replicas in this process with the build
// double (test/helpers/service.ts): admission, 409, per-replica memory admission, TTL, cancel, 503 on Redis loss.
import { randomUUID } from 'node:crypto';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { jobIdFor } from '../../src/jobs/job.js';
import { QUEUE_NAME } from '../../src/jobs/redis-backend.js';
import { KnnClient, knnBuildBody } from '../helpers/knn-client.js';
import { RedisTestServer, redisUnavailable } from '../helpers/redis-server.js';
import { type TestService, startTestService } from '../helpers/service.js';

const skip = redisUnavailable();

describe.skipIf(skip)(`QUEUE_BACKEND=redis${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let redis: RedisTestServer;
  let started: TestService[] = [];

  beforeAll(async () => {
    redis = await RedisTestServer.start();
  });
  afterAll(async () => {
    await redis?.close();
  });
  afterEach(async () => {
    await Promise.all(started.map((t) => t.service.shutdown(0)));
    started = [];
  });

  /** A replica in this process; `prefix` keeps each test's queue apart. */
  async function replica(name: string, prefix: string, env: Record<string, string> = {}) {
    const t = await startTestService({
      QUEUE_BACKEND: 'redis',
      REDIS_URL: redis.url,
      REDIS_PREFIX: prefix,
      REPLICA_NAME: name,
      ...env,
    });
    started.push(t);
    return t;
  }

  const body = (n: number, over: Record<string, unknown> = {}) =>
    knnBuildBody({
      vector_path: `seg/${n}.knnvec`,
      doc_id_path: `seg/${n}.knndid`,
      dimension: 8,
      doc_count: 1000,
      ...over,
    });

  async function post(url: string, b: unknown): Promise<Response> {
    return fetch(`${url}/_build`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(b),
    });
  }

  async function waitUntil(cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('admits a job once across replicas; any replica answers _status and lists it with the replica running it', async () => {
    const prefix = `t-${randomUUID()}`;
    const [a, b] = [await replica('a', prefix), await replica('b', prefix)];
    const ids = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        post(i % 2 ? a.url : b.url, body(1)).then(async (r) => {
          expect(r.status).toBe(200);
          return ((await r.json()) as { job_id: string }).job_id;
        }),
      ),
    );
    expect(new Set(ids).size).toBe(1);
    const id = ids[0]!;
    await waitUntil(() => a.builds.calls.length + b.builds.calls.length > 0);
    await new Promise((r) => setTimeout(r, 200));
    expect(a.builds.calls.length + b.builds.calls.length).toBe(1);
    const runner = a.builds.isRunning(id) ? a : b;
    const other = runner === a ? b : a;

    const jobs = (await (await fetch(`${other.url}/_jobs`)).json()) as {
      jobs: { job_id: string; replica: string | null; phase: string }[];
    };
    expect(jobs.jobs).toEqual([
      expect.objectContaining({ job_id: id, replica: runner === a ? 'a' : 'b', phase: 'downloading' }),
    ]);
    expect(await (await fetch(`${other.url}/_status/${id}`)).json()).toEqual({
      task_status: 'RUNNING_INDEX_BUILD',
      file_name: null,
      error_message: null,
    });
    // A changed request for the live job is refused on either replica.
    const changed = await post(other.url, body(1, { dimension: 16 }));
    expect(changed.status).toBe(409);
    expect(((await changed.json()) as { detail: string }).detail).toMatch(/dimension: 8 vs 16/);

    runner.builds.complete(id);
    const client = new KnnClient({ endpoint: [a.url, b.url] });
    expect(await client.poll(id)).toEqual({
      task_status: 'COMPLETED_INDEX_BUILD',
      file_name: '1.faiss',
      error_message: null,
    });
  });

  it('stores a job under the request field names, so replicas of earlier versions share the queue', async () => {
    const prefix = `t-${randomUUID()}`;
    const a = await replica('a', prefix);
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(QUEUE_NAME, { connection, prefix });
    try {
      const id = ((await (await post(a.url, body(3))).json()) as { job_id: string }).job_id;
      expect(id).toBe(jobIdFor('seg/3.knnvec', 'my-cluster'));
      const stored = (await queue.getJob(id))!.data as { request: unknown };
      expect(stored.request).toEqual({
        container_name: 'my-bucket',
        vector_path: 'seg/3.knnvec',
        doc_id_path: 'seg/3.knndid',
        tenant_id: 'my-cluster',
        dimension: 8,
        doc_count: 1000,
        data_type: 'float',
        index_parameters: {
          space_type: 'l2',
          algorithm_parameters: { m: 16, ef_construction: 100, ef_search: 100 },
        },
        skip_stored_vectors: false,
      });

      // A job queued by an earlier replica (the whole wire request, unknown keys dropped) runs here as sent.
      const old = body(4, { tenant_id: 'old' });
      const oldId = jobIdFor('seg/4.knnvec', 'old');
      await queue.add(
        'build',
        { request: old, admittedBy: 'old-replica', queuedAt: Date.now() },
        { jobId: oldId },
      );
      await waitUntil(() => a.builds.isRunning(oldId));
      const listed = (await (await fetch(`${a.url}/_jobs`)).json()) as { jobs: Record<string, unknown>[] };
      expect(listed.jobs.find((j) => j.job_id === oldId)).toMatchObject({
        vector_path: 'seg/4.knnvec',
        tenant_id: 'old',
        dimension: 8,
        doc_count: 1000,
        replica: 'a',
      });
      a.builds.complete(oldId);
      expect(await new KnnClient({ endpoint: a.url }).poll(oldId)).toMatchObject({
        task_status: 'COMPLETED_INDEX_BUILD',
        file_name: '4.faiss',
      });
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it('refuses (409) a second tenant writing the same .faiss on another replica while the first job is unfinished', async () => {
    const prefix = `t-${randomUUID()}`;
    const [a, b] = [await replica('a', prefix), await replica('b', prefix)];
    const first = await post(a.url, body(7, { tenant_id: 'one' }));
    expect(first.status).toBe(200);
    const id = ((await first.json()) as { job_id: string }).job_id;
    const second = await post(b.url, body(7, { tenant_id: 'two' }));
    expect(second.status).toBe(409);
    expect(((await second.json()) as { detail: string }).detail).toMatch(
      /still building the index for .*seg\/7\.knnvec/,
    );
    await waitUntil(() => a.builds.isRunning(id) || b.builds.isRunning(id));
    (a.builds.isRunning(id) ? a : b).builds.complete(id);
    await new KnnClient({ endpoint: [a.url, b.url] }).poll(id);
    expect((await post(b.url, body(7, { tenant_id: 'two' }))).status).toBe(200);
  });

  it('a failed job is rebuilt in place by a client retry; DELETE on any replica cancels where it runs', async () => {
    const prefix = `t-${randomUUID()}`;
    const [a, b] = [await replica('a', prefix), await replica('b', prefix)];
    const client = new KnnClient({ endpoint: [a.url, b.url] });
    const id = await client.build(body(2));
    await waitUntil(() => a.builds.isRunning(id) || b.builds.isRunning(id));
    const runner = a.builds.isRunning(id) ? a : b;
    runner.builds.fail(id, 'S3 said no');
    expect((await client.poll(id)).error_message).toBe('S3 said no');

    expect(await client.build(body(2))).toBe(id);
    await waitUntil(() => a.builds.isRunning(id) || b.builds.isRunning(id));
    expect(await client.status(id)).toMatchObject({ task_status: 'RUNNING_INDEX_BUILD' });
    const runner2 = a.builds.isRunning(id) ? a : b;
    const other = runner2 === a ? b : a;
    const res = await fetch(`${other.url}/_jobs/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ task_status: 'FAILED_INDEX_BUILD', error_message: 'cancelled' });
    expect(runner2.builds.isRunning(id)).toBe(false);
    expect(await client.status(id)).toEqual({
      task_status: 'FAILED_INDEX_BUILD',
      file_name: null,
      error_message: 'cancelled',
    });
    expect((await fetch(`${a.url}/_jobs/${id}`, { method: 'DELETE' })).status).toBe(409);
    expect((await fetch(`${a.url}/_jobs/nope`, { method: 'DELETE' })).status).toBe(404);
  });

  it('a replica takes a job only while it has a free worker slot and the host memory the job needs', async () => {
    const prefix = `t-${randomUUID()}`;
    // 1000 x 8 float needs ~0.26 GiB by the planner's estimate: 0.4 GiB holds one job, not two.
    const a = await replica('a', prefix, { MAX_WORKERS: '2', CPU_MEMORY_LIMIT: '0.4' });
    const client = new KnnClient({ endpoint: a.url });
    const [id1, id2] = [await client.build(body(3)), await client.build(body(4))];
    await waitUntil(() => a.builds.running === 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(a.builds.running).toBe(1);
    const first = a.builds.isRunning(id1) ? id1 : id2;
    const second = first === id1 ? id2 : id1;
    const listed = (await (await fetch(`${a.url}/_jobs`)).json()) as { queued: number; running: number };
    expect(listed).toMatchObject({ queued: 1, running: 1 });

    // A second replica with room takes the job the first could not admit.
    const b = await replica('b', prefix, { MAX_WORKERS: '1' });
    await waitUntil(() => b.builds.isRunning(second));
    b.builds.complete(second);
    a.builds.complete(first);
    expect((await client.poll(first)).task_status).toBe('COMPLETED_INDEX_BUILD');
    expect((await client.poll(second)).task_status).toBe('COMPLETED_INDEX_BUILD');
    expect(a.builds.maxRunning).toBe(1);
  });

  it('a replica that shuts down puts its running build back in the queue for another replica', async () => {
    const prefix = `t-${randomUUID()}`;
    const a = await replica('a', prefix, { MAX_WORKERS: '1' });
    const client = new KnnClient({ endpoint: a.url });
    const id = await client.build(body(11));
    await waitUntil(() => a.builds.isRunning(id));
    const b = await replica('b', prefix, { MAX_WORKERS: '1' });
    started = started.filter((t) => t !== a);
    await a.service.shutdown(0);
    await waitUntil(() => b.builds.isRunning(id));
    expect(await (await fetch(`${b.url}/_status/${id}`)).json()).toMatchObject({
      task_status: 'RUNNING_INDEX_BUILD',
    });
    b.builds.complete(id);
    expect((await new KnnClient({ endpoint: b.url }).poll(id)).task_status).toBe('COMPLETED_INDEX_BUILD');
  });

  it('a job that waited in Redis longer than MAX_QUEUE_WAIT_SECONDS fails when a replica takes it', async () => {
    const prefix = `t-${randomUUID()}`;
    const a = await replica('a', prefix, { MAX_WORKERS: '1', MAX_QUEUE_WAIT_SECONDS: '1' });
    const client = new KnnClient({ endpoint: a.url });
    const first = await client.build(body(13));
    await waitUntil(() => a.builds.isRunning(first));
    const late = await client.build(body(14));
    await new Promise((r) => setTimeout(r, 1500));
    a.builds.complete(first);
    const s = await client.poll(late);
    expect(s.task_status).toBe('FAILED_INDEX_BUILD');
    expect(s.error_message).toMatch(/waited \d+ s in the queue, over MAX_QUEUE_WAIT_SECONDS \(1 s\)/);
    expect(a.builds.isRunning(late)).toBe(false);
  });

  it('finished jobs expire REQUEST_STORE_TTL_SECONDS after they finished; the store refuses past its size', async () => {
    const prefix = `t-${randomUUID()}`;
    const a = await replica('a', prefix, { REQUEST_STORE_TTL_SECONDS: '1', REQUEST_STORE_MAX_SIZE: '2' });
    const client = new KnnClient({ endpoint: a.url, maxRetryWaitMs: 10 });
    const id = await client.build(body(5));
    await client.build(body(6));
    const full = await post(a.url, body(7));
    expect(full.status).toBe(507);
    await waitUntil(() => a.builds.isRunning(id));
    a.builds.complete(id);
    expect((await client.poll(id)).task_status).toBe('COMPLETED_INDEX_BUILD');
    await new Promise((r) => setTimeout(r, 1200));
    expect((await fetch(`${a.url}/_status/${id}`)).status).toBe(404);
  });

  it('Redis unreachable: _build and _status answer 503, the heart beat says the backend is down; it recovers', async () => {
    const prefix = `t-${randomUUID()}`;
    const a = await replica('a', prefix, { REPLICA_LOST_SECONDS: '1' });
    const client = new KnnClient({ endpoint: a.url, maxRetryWaitMs: 10 });
    const id = await client.build(body(8));
    await waitUntil(() => a.builds.isRunning(id));
    expect(await (await fetch(`${a.url}/_heart_beat`)).json()).toEqual({
      status: 'ok',
      queue_backend: 'redis',
      backend: 'up',
      replica: 'a',
    });

    await redis.stop();
    try {
      const beat = await fetch(`${a.url}/_heart_beat`);
      expect(beat.status).toBe(200);
      expect(await beat.json()).toMatchObject({ status: 'degraded', backend: 'down', replica: 'a' });
      expect(await (await fetch(`${a.url}/metrics`)).text()).toMatch(/^knn_queue_backend_up 0$/m);
      const build = await post(a.url, body(9));
      expect(build.status).toBe(503);
      expect(build.headers.get('retry-after')).toBe('1');
      expect(((await build.json()) as { detail: string }).detail).toMatch(/Redis\) is unreachable/);
      const status = await fetch(`${a.url}/_status/${id}`);
      expect(status.status).toBe(503);
      expect((await fetch(`${a.url}/_jobs`)).status).toBe(503);
      // The build finishes while Redis is away; its result reaches Redis once it is back.
      a.builds.complete(id);
    } finally {
      await redis.restart();
    }
    await waitUntil(async () => (await fetch(`${a.url}/_status/${id}`)).status === 200, 15_000);
    expect((await client.poll(id, { timeoutMs: 30_000 })).task_status).toBe('COMPLETED_INDEX_BUILD');
    expect(await (await fetch(`${a.url}/_heart_beat`)).json()).toMatchObject({ status: 'ok', backend: 'up' });
    expect(await (await fetch(`${a.url}/metrics`)).text()).toMatch(/^knn_queue_backend_up 1$/m);
    const again = await client.build(body(10));
    await waitUntil(() => a.builds.isRunning(again));
  });

  it('starts while Redis is down (503 meanwhile) and serves once Redis comes up', async () => {
    const late = await RedisTestServer.start();
    await late.stop();
    try {
      const t = await startTestService({
        QUEUE_BACKEND: 'redis',
        REDIS_URL: late.url,
        REPLICA_NAME: 'early',
      });
      started.push(t);
      expect((await post(t.url, body(12))).status).toBe(503);
      expect(await (await fetch(`${t.url}/_heart_beat`)).json()).toMatchObject({ backend: 'down' });
      await late.restart();
      await waitUntil(async () => (await post(t.url, body(12))).status === 200, 15_000);
      await waitUntil(() => t.builds.calls.length === 1, 10_000);
    } finally {
      await Promise.all(started.map((x) => x.service.shutdown(0)));
      started = [];
      await late.close();
    }
  });
});
