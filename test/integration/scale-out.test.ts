// Scale-out with real parts: three service replicas as separate processes (QUEUE_BACKEND=redis, CPU builder),
// one real redis-server on loopback, the S3 test server. Requests go round robin over the replicas as behind a
// load balancer. Covers: one job for 20 concurrent identical POSTs; Redis stopped and restarted mid-run; kill -9
// of the replica running a build (retried elsewhere, then FAILED "replica lost" when it happens again).
import { randomUUID } from 'node:crypto';

import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readFaissIndex } from '../../src/faiss-format/index.js';
import { KnnClient, type KnnStatusResponse, knnBuildBody } from '../helpers/knn-client.js';
import { RedisTestServer, redisUnavailable } from '../helpers/redis-server.js';
import { Replica, replicaEnv, startReplicas, workerOf } from '../helpers/replicas.js';
import {
  createTestBucket,
  deleteTestBucket,
  getObject,
  listMultipartUploads,
  listObjectKeys,
  putObject,
  s3TestServer,
  s3Unavailable,
  testS3Client,
} from '../helpers/s3.js';
import { clusteredFloat } from '../helpers/synthetic.js';

/** A lost replica's job is detected within 2 x REPLICA_LOST_SECONDS (lock expiry + one stalled-check period). */
const LOST_SECONDS = 2;
const skip = s3Unavailable() ?? redisUnavailable();

describe.skipIf(skip)(`scale-out: replicas sharing Redis${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let redis: RedisTestServer;
  let replicas: Replica[] = [];
  let s3: S3Client;
  let bucket: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    s3 = testS3Client();
    bucket = await createTestBucket(s3, 'knn-scale');
    redis = await RedisTestServer.start();
    env = replicaEnv(s3TestServer(), redis.url, {
      REPLICA_LOST_SECONDS: String(LOST_SECONDS),
      REPLICA_LOST_RETRIES: '1',
    });
    replicas = await startReplicas(3, env);
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await redis?.close();
    if (bucket) await deleteTestBucket(s3, bucket).catch(() => undefined);
  });

  const alive = () => replicas.filter((r) => r.alive);
  const client = () => new KnnClient({ endpoint: alive().map((r) => r.url), maxRetryWaitMs: 200 });

  /** Uploads a float segment and returns its build body and where its index will be. */
  async function segment(count: number, dimension: number, seed: number) {
    const folder = `knn-index/${randomUUID()}_vectors`;
    const vectors = clusteredFloat({ count, dimension, seed, clusters: 16, latentDimension: 8 });
    const ids = Int32Array.from({ length: count }, (_, i) => 3 * i + 1);
    await putObject(s3, bucket, `${folder}/seg.knnvec`, new Uint8Array(vectors.buffer));
    await putObject(s3, bucket, `${folder}/seg.knndid`, new Uint8Array(ids.buffer));
    return {
      folder,
      count,
      body: knnBuildBody({
        container_name: bucket,
        vector_path: `${folder}/seg.knnvec`,
        doc_id_path: `${folder}/seg.knndid`,
        tenant_id: 'scale-out',
        dimension,
        doc_count: count,
        index_parameters: {
          space_type: 'l2',
          algorithm: 'hnsw',
          algorithm_parameters: { ef_construction: 64, ef_search: 64, m: 16 },
        },
      }),
    };
  }

  async function faissKeys(folder: string): Promise<string[]> {
    return (await listObjectKeys(s3, bucket)).filter((k) => k.startsWith(folder) && k.endsWith('.faiss'));
  }

  async function expectReadableIndex(folder: string, count: number): Promise<void> {
    const index = readFaissIndex(new Uint8Array(await getObject(s3, bucket, `${folder}/seg.faiss`)));
    expect(index.ntotal).toBe(count);
  }

  const logsOf = (jobId: string, msg: string) =>
    replicas.flatMap((r) =>
      r
        .records()
        .filter((l) => l.jobId === jobId && l.msg === msg)
        .map(() => r.name),
    );

  it('20 concurrent identical POSTs spread over three replicas: one job, one worker, one file', async () => {
    const seg = await segment(3000, 32, 1);
    const ids = await Promise.all(
      Array.from({ length: 20 }, (_, i) => new KnnClient({ endpoint: replicas[i % 3]!.url }).build(seg.body)),
    );
    expect(new Set(ids).size).toBe(1);
    const id = ids[0]!;
    const s = await client().poll(id, { intervalMs: 20, timeoutMs: 60_000 });
    expect(s).toEqual({ task_status: 'COMPLETED_INDEX_BUILD', file_name: 'seg.faiss', error_message: null });
    expect(logsOf(id, 'worker started')).toHaveLength(1);
    expect(await faissKeys(seg.folder)).toEqual([`${seg.folder}/seg.faiss`]);
    await expectReadableIndex(seg.folder, seg.count);
    // Every replica lists it, with the replica that ran it.
    for (const r of replicas) {
      const listing = (await (await fetch(`${r.url}/_jobs`)).json()) as {
        jobs: { job_id: string; replica: string | null }[];
      };
      const job = listing.jobs.find((j) => j.job_id === id);
      expect(job?.replica).toBe(logsOf(id, 'worker started')[0]);
    }
  });

  it('Redis stopped and restarted during a run: 503 meanwhile, and every job ends in a final state', async () => {
    const segs = await Promise.all([0, 1, 2, 3].map((i) => segment(10_000, 32, 10 + i)));
    const c = client();
    const ids = await Promise.all(segs.map((s) => c.build(s.body)));
    await waitFor(() => ids.some((id) => logsOf(id, 'worker started').length > 0), 20_000);

    await redis.stop();
    const down = Date.now();
    try {
      for (const r of replicas) {
        const beat = await fetch(`${r.url}/_heart_beat`);
        expect(beat.status).toBe(200);
        expect(await beat.json()).toMatchObject({ status: 'degraded', backend: 'down' });
        expect((await fetch(`${r.url}/_status/${ids[0]}`)).status).toBe(503);
      }
      const refused = await fetch(`${replicas[0]!.url}/_build`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify((await segment(100, 8, 99)).body),
      });
      expect(refused.status).toBe(503);
      // Longer than a lock lasts: the running jobs' locks expire while Redis is away.
      await new Promise((r) => setTimeout(r, Math.max(0, LOST_SECONDS * 1500 - (Date.now() - down))));
    } finally {
      await redis.restart();
    }
    expect(replicas.every((r) => r.alive)).toBe(true);
    await waitFor(async () => (await fetch(`${replicas[0]!.url}/_status/${ids[0]}`)).status === 200, 15_000);
    const finals = await Promise.all(
      ids.map((id) => client().poll(id, { intervalMs: 100, timeoutMs: 90_000 })),
    );
    const summary = finals.map((s) => s.task_status);
    console.log(`after a Redis restart: ${summary.join(', ')}`);
    for (const [i, s] of finals.entries()) {
      expect(s.task_status).not.toBe('RUNNING_INDEX_BUILD');
      if (s.task_status === 'COMPLETED_INDEX_BUILD')
        await expectReadableIndex(segs[i]!.folder, segs[i]!.count);
      else expect(s.error_message).toMatch(/replica|lost|Redis/i);
    }
    // The service took builds again by itself.
    const after = await segment(500, 8, 98);
    expect((await client().poll(await client().build(after.body), { intervalMs: 20 })).task_status).toBe(
      'COMPLETED_INDEX_BUILD',
    );
  });

  it(`kill -9 of the replica running a build: another replica takes it within ${2 * LOST_SECONDS} s and completes it; the other replicas' jobs are untouched`, async () => {
    const victim = await segment(60_000, 64, 21);
    const bystanders = await Promise.all([31, 32, 33].map((seed) => segment(20_000, 32, seed)));
    // The bystanders start first: at most MAX_WORKERS (2) per replica, so they run on at least two replicas.
    const others = await Promise.all(bystanders.map((b) => client().build(b.body)));
    const placed = await Promise.all(others.map((o) => workerOf(replicas, o, 20_000)));
    const id = await client().build(victim.body);
    const first = await workerOf(replicas, id, 20_000);

    await first.replica.kill();
    const killedAt = Date.now();
    const second = await workerOf(
      replicas.filter((r) => r !== first.replica),
      id,
      (2 * LOST_SECONDS + 5) * 1000,
    );
    const detectedSeconds = (Date.now() - killedAt) / 1000;
    console.log(
      `replica ${first.replica.name} killed; ${second.replica.name} took the job after ${detectedSeconds} s`,
    );
    // The bound plus slack for a loaded CI machine (timers run late when two cores build for three replicas).
    expect(detectedSeconds).toBeLessThanOrEqual(2 * LOST_SECONDS + 4);
    const done = await client().poll(id, { intervalMs: 50, timeoutMs: 90_000 });
    expect(done).toEqual({
      task_status: 'COMPLETED_INDEX_BUILD',
      file_name: 'seg.faiss',
      error_message: null,
    });
    await expectReadableIndex(victim.folder, victim.count);
    // The killed replica's build worker saw the disconnect and stopped; it left no upload open.
    await waitFor(() => !processAlive(first.pid), 30_000);
    await waitFor(async () => (await listMultipartUploads(s3, bucket)).length === 0, 10_000);

    const untouched = others.filter((_, i) => placed[i]!.replica !== first.replica);
    expect(untouched.length).toBeGreaterThan(0);
    for (const [i, other] of others.entries()) {
      const s = await client().poll(other, { intervalMs: 50, timeoutMs: 60_000 });
      expect(s.task_status).toBe('COMPLETED_INDEX_BUILD');
      await expectReadableIndex(bystanders[i]!.folder, bystanders[i]!.count);
      // A job on a replica that lived was never started again; one on the killed replica was, elsewhere.
      expect(logsOf(other, 'worker started')).toHaveLength(untouched.includes(other) ? 1 : 2);
    }

    // The killed replica comes back (as a restarted pod would) and takes jobs again.
    replicas[replicas.indexOf(first.replica)] = await Replica.start(first.replica.name, env);
  });

  it('a job whose replica is lost more often than REPLICA_LOST_RETRIES ends FAILED "replica lost"; nothing half-written', async () => {
    const victim = await segment(60_000, 64, 22);
    const id = await client().build(victim.body);
    const first = await workerOf(replicas, id, 20_000);
    await first.replica.kill();
    const second = await workerOf(
      replicas.filter((r) => r !== first.replica),
      id,
      (2 * LOST_SECONDS + 5) * 1000,
    );
    // The replica that took it over dies too: the job has used its one retry (REPLICA_LOST_RETRIES=1).
    await second.replica.kill();
    const final: KnnStatusResponse = await client().poll(id, { intervalMs: 50, timeoutMs: 60_000 });
    expect(final.task_status).toBe('FAILED_INDEX_BUILD');
    expect(final.error_message).toContain(`the replica running this build (${second.replica.name}) was lost`);
    expect(final.error_message).toMatch(/send the build again/);
    console.log(`lost twice -> ${final.error_message}`);
    // Nothing half-written where k-NN would read it, and no upload left open.
    await waitFor(() => !processAlive(first.pid) && !processAlive(second.pid), 30_000);
    expect(await faissKeys(victim.folder)).toEqual([]);
    await waitFor(async () => (await listMultipartUploads(s3, bucket)).length === 0, 10_000);

    // A client retry (k-NN's next attempt) builds it on the replica that is left.
    expect(alive()).toHaveLength(1);
    expect(await client().build(victim.body)).toBe(id);
    const done = await client().poll(id, { intervalMs: 50, timeoutMs: 90_000 });
    expect(done.task_status).toBe('COMPLETED_INDEX_BUILD');
    await expectReadableIndex(victim.folder, victim.count);
  });
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
