// End to end, the way OpenSearch k-NN uses the service: a strict k-NN client uploads .knnvec/.knndid blobs in
// k-NN's layout to a real S3 server, builds (polling with a 0 s interval), downloads file_name from the folder of
// the vectors, and real Faiss 1.15 checks the file: the id map is the doc ids in order, recall@10 >= 0.9.
// With KNN_SERVICE_URL set, the same test runs against an external service (e.g. the container) that must be
// configured for the same S3 test server. It runs twice: against one service (the memory backend), and against
// three replicas sharing a Redis (QUEUE_BACKEND=redis, separate processes) with the client's POST and each of its
// polls going to the next replica, round robin, as behind a load balancer.
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KnnClient, hnswIndexParameters, knnBuildBody } from '../helpers/knn-client.js';
import { FAISS_115_PYTHON, faissPythonAvailable, runPythonJson } from '../helpers/python.js';
import { type RealService, startRealService } from '../helpers/real-service.js';
import { RedisTestServer, redisUnavailable } from '../helpers/redis-server.js';
import { type LogRecord, type Replica, replicaEnv, startReplicas, workerOf } from '../helpers/replicas.js';
import {
  createTestBucket,
  deleteTestBucket,
  getObject,
  listMultipartUploads,
  listObjectKeys,
  putObject,
  s3StoreSettings,
  s3TestServer,
  s3Unavailable,
  testS3Client,
} from '../helpers/s3.js';
import {
  clusteredBinary,
  clusteredFloat,
  normalizeRows,
  toFloat16Array,
  toInt8,
} from '../helpers/synthetic.js';

const EXTERNAL = process.env.KNN_SERVICE_URL;
const CHECK = 'test/python/faiss_check.py';
const skipReason =
  s3Unavailable() ??
  (faissPythonAvailable() ? undefined : 'Faiss 1.15 for Python missing (scripts/setup.sh --test)');

interface Case {
  name: string;
  dataType: 'float' | 'half_float' | 'byte' | 'binary';
  space: 'l2' | 'innerproduct' | 'hamming';
  dimension: number;
  count: number;
  skipStoredVectors?: boolean;
}

const CASES: Case[] = [
  { name: 'float l2', dataType: 'float', space: 'l2', dimension: 48, count: 3000 },
  {
    name: 'float innerproduct (cosine, normalised)',
    dataType: 'float',
    space: 'innerproduct',
    dimension: 48,
    count: 3000,
  },
  { name: 'half_float l2', dataType: 'half_float', space: 'l2', dimension: 32, count: 2500 },
  {
    name: 'half_float innerproduct',
    dataType: 'half_float',
    space: 'innerproduct',
    dimension: 32,
    count: 2500,
  },
  { name: 'byte l2', dataType: 'byte', space: 'l2', dimension: 40, count: 2500 },
  { name: 'byte innerproduct', dataType: 'byte', space: 'innerproduct', dimension: 40, count: 2500 },
  { name: 'binary hamming', dataType: 'binary', space: 'hamming', dimension: 256, count: 2500 },
];

/** The .knnvec bytes k-NN uploads: fp32 for float and half_float, int8 for byte, packed bits for binary. */
function knnvecFor(c: Case, seed: number): Uint8Array {
  const opts = { count: c.count, dimension: c.dimension, seed, clusters: 24, latentDimension: 12 };
  switch (c.dataType) {
    case 'binary':
      return clusteredBinary(opts);
    case 'byte':
      return new Uint8Array(toInt8(clusteredFloat(opts)).buffer);
    default: {
      let x = clusteredFloat(opts);
      if (c.space === 'innerproduct') x = normalizeRows(x, c.dimension);
      // half_float travels as fp32 but must be representable: k-NN validates the range.
      if (c.dataType === 'half_float') x = Float32Array.from(toFloat16Array(x), (_, i) => x[i]!);
      return new Uint8Array(x.buffer);
    }
  }
}

interface Topology {
  name: string;
  /** Replicas sharing one Redis (QUEUE_BACKEND=redis); 0: one service with the memory backend. */
  replicas: number;
  skip: string | undefined;
}

const TOPOLOGIES: Topology[] = [
  { name: 'one service', replicas: 0, skip: undefined },
  {
    name: 'three replicas (QUEUE_BACKEND=redis), round robin',
    replicas: 3,
    skip: EXTERNAL ? 'KNN_SERVICE_URL names one external service' : redisUnavailable(),
  },
];

/** Strictly increasing doc ids with gaps, as a segment with deletions has. */
function docIdsFor(count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => 4 * i + 7 + (i % 3));
}

describe.each(TOPOLOGIES)(
  `k-NN-faithful end to end, $name${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  (topology) => {
    if (skipReason || topology.skip) {
      it.skip(`skipped: ${skipReason ?? topology.skip}`, () => {});
      return;
    }
    let svc: RealService | undefined;
    let redis: RedisTestServer | undefined;
    let replicas: Replica[] = [];
    let url: string;
    let s3: S3Client;
    let bucket: string;
    let client: KnnClient;
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'knn-e2e-'));

    beforeAll(async () => {
      s3 = testS3Client();
      bucket = await createTestBucket(s3, 'knn-e2e');
      if (EXTERNAL) {
        url = EXTERNAL;
      } else if (topology.replicas > 0) {
        redis = await RedisTestServer.start();
        replicas = await startReplicas(topology.replicas, replicaEnv(s3TestServer(), redis.url));
        url = replicas[0]!.url;
      } else {
        svc = await startRealService(s3StoreSettings(), { MAX_WORKERS: '2' });
        url = svc.url;
      }
      const endpoints = replicas.length > 0 ? replicas.map((r) => r.url) : url;
      client = new KnnClient({ endpoint: endpoints, maxRetryWaitMs: 100 });
    });
    afterAll(async () => {
      await svc?.close();
      await Promise.all(replicas.map((r) => r.stop()));
      await redis?.close();
      await deleteTestBucket(s3, bucket).catch(() => undefined);
      rmSync(tmp, { recursive: true, force: true });
    });

    /** Uploads a segment in k-NN's layout and returns the build body k-NN would send. */
    async function uploadSegment(c: Case, vectors: Uint8Array, ids: Int32Array, docCount = c.count) {
      const folder = `knn-index/${randomUUID()}_vectors`;
      const name = `${Buffer.from(c.name).toString('base64url')}_field__${ids.length}`;
      const vectorPath = `${folder}/${name}.knnvec`;
      const docIdPath = `${folder}/${name}.knndid`;
      await putObject(s3, bucket, vectorPath, vectors);
      await putObject(s3, bucket, docIdPath, new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
      return {
        folder,
        body: knnBuildBody({
          container_name: bucket,
          vector_path: vectorPath,
          doc_id_path: docIdPath,
          tenant_id: 'integration-cluster',
          dimension: c.dimension,
          doc_count: docCount,
          data_type: c.dataType,
          index_parameters: hnswIndexParameters(c.space),
          skip_stored_vectors: c.skipStoredVectors ?? false,
        }),
      };
    }

    it.each(CASES)('builds $name: ids are the doc ids in order, recall@10 >= 0.9', async (c) => {
      const vectors = knnvecFor(c, 11);
      const ids = docIdsFor(c.count);
      const { folder, body } = await uploadSegment(c, vectors, ids);

      const jobId = await client.build(body);
      const status = await client.poll(jobId, { intervalMs: 0, timeoutMs: 120_000 });
      expect(status.error_message).toBeNull();
      expect(status.task_status).toBe('COMPLETED_INDEX_BUILD');
      expect(status.file_name).toBe(`${path.posix.basename(body.vector_path as string, '.knnvec')}.faiss`);
      if (replicas.length > 0) {
        // The POST and every poll went to the next replica: all three answered for this job.
        const asked = client.attempts.filter((x) => x.path.endsWith(jobId) || x.method === 'POST').slice(-3);
        expect(new Set(asked.map((x) => x.endpoint)).size).toBe(3);
      }

      const index = await getObject(s3, bucket, `${folder}/${status.file_name}`);
      const { info, recall } = await faissCheck(jobId, c, index, vectors, ids, 200);
      expect(info.ntotal).toBe(c.count);
      expect(info.d).toBe(c.dimension);
      expect(recall.unknown_ids).toBe(0);
    });

    const inProcess = topology.replicas === 0 && !EXTERNAL;
    it.skipIf(!inProcess)(
      `counts each build it ran in /metrics with the measurements the worker returned${inProcess ? '' : ' (skipped: /metrics describes one replica)'}`,
      async () => {
        const text = await (await fetch(`${svc!.url}/metrics`)).text();
        const value = (series: string) => Number(new RegExp(`^${series} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
        const completed = value('knn_jobs_finished_total\\{status="COMPLETED_INDEX_BUILD"\\}');
        expect(completed).toBeGreaterThanOrEqual(CASES.length);
        expect(value('knn_builds_total\\{builder="cpu"\\}')).toBe(completed);
        expect(value('knn_job_phase_seconds_count\\{phase="build",builder="cpu"\\}')).toBe(completed);
        expect(value('knn_bytes_total\\{direction="download"\\}')).toBeGreaterThan(0);
      },
    );

    it('copies the stored vectors from the .knnvec (UploadPartCopy): sends <= 0.35x of the file, k-NN loads it', async () => {
      // Big enough that the vectors reach past S3's 5 MiB part minimum after the first part.
      const c: Case = { name: 'float copy', dataType: 'float', space: 'l2', dimension: 128, count: 24_000 };
      const vectors = knnvecFor(c, 17);
      const ids = docIdsFor(c.count);
      const { folder, body } = await uploadSegment(c, vectors, ids);
      const jobId = await client.build(body);
      const status = await client.poll(jobId, { intervalMs: 0, timeoutMs: 120_000 });
      expect(status.error_message).toBeNull();
      const index = await getObject(s3, bucket, `${folder}/${status.file_name}`);
      if (!EXTERNAL) {
        const jobs = (await (await fetch(`${url}/_jobs`)).json()) as {
          jobs: {
            job_id: string;
            upload_path: string;
            bytes_uploaded: number;
            bytes_copied: number;
            timing: Record<string, number | string | null> | null;
          }[];
        };
        const job = jobs.jobs.find((j) => j.job_id === jobId)!;
        expect(job.upload_path).toBe('copy');
        // The vectors were copied while the graph built (the copy's seconds may round to 0 on a small set).
        expect(job.timing).toMatchObject({ overlap_reason: null, wall_seconds: expect.any(Number) });
        expect(job.timing!.copy_during_build_seconds).toBeLessThanOrEqual(job.timing!.copy_seconds as number);
        // All but the few MiB that pad the graph's last part to S3's 5 MiB minimum.
        expect(job.bytes_copied).toBeGreaterThan(vectors.length - 5 * 2 ** 20);
        expect(job.bytes_uploaded + job.bytes_copied).toBe(index.length);
        expect(job.bytes_uploaded).toBeLessThanOrEqual(0.35 * index.length);
      }
      const { file } = await faissCheck('copy', c, index, vectors, ids, 100);
      // k-NN's own reader (Faiss as k-NN 3.8 vendors it), when the checker binaries are on this machine.
      const checker = path.resolve('../shared/knn-faiss/knn-faiss-check-3.8');
      if (existsSync(checker)) {
        const queries = path.join(tmp, 'copy.queries');
        writeFileSync(queries, vectors.subarray(0, 4 * c.dimension * 5));
        const out = execFileSync(checker, [file, queries, '10'], { encoding: 'utf8' }).trim().split('\n');
        const structure = JSON.parse(out[0]!) as {
          ntotal: number;
          warnings: unknown[];
          trailing_bytes: number;
        };
        expect(structure).toMatchObject({ ntotal: c.count, warnings: [], trailing_bytes: 0 });
        for (let q = 0; q < 5; q++) {
          const line = JSON.parse(out[q + 1]!) as { labels: number[] };
          expect(line.labels[0]).toBe(ids[q]); // each query vector finds itself first
        }
      }
    });

    it('builds the graph only with skip_stored_vectors (Faiss null storage)', async () => {
      const c: Case = {
        name: 'float skip',
        dataType: 'float',
        space: 'l2',
        dimension: 16,
        count: 600,
        skipStoredVectors: true,
      };
      const { folder, body } = await uploadSegment(c, knnvecFor(c, 5), docIdsFor(c.count));
      const status = await client.poll(await client.build(body), { intervalMs: 0 });
      expect(status.task_status).toBe('COMPLETED_INDEX_BUILD');
      const file = path.join(tmp, 'skip.faiss');
      writeFileSync(file, await getObject(s3, bucket, `${folder}/${status.file_name}`));
      const [info] = await runPythonJson<[Res<Info>]>(
        FAISS_115_PYTHON,
        CHECK,
        ['batch'],
        JSON.stringify([{ cmd: 'info', file }]),
      );
      expect(info.ok, info.error).toBe(true);
      expect(JSON.stringify(info.result)).toMatch(/null|IndexNullStorage|NullStorage/i);
      expect(info.result!.ntotal).toBe(c.count);
    });

    /**
     * Faiss 1.15 reads the index (`name`.faiss in tmp): every id in doc order, recall@10 >= 0.9 at ef_search 100
     * on `queries` of the vectors. Returns what it found and the file.
     */
    async function faissCheck(
      name: string,
      c: Case,
      index: Uint8Array,
      vectors: Uint8Array,
      ids: Int32Array,
      queries: number,
    ): Promise<{ info: Info; recall: Recall; file: string }> {
      const [file, vecFile, idFile] = ['faiss', 'knnvec', 'knndid'].map((ext) =>
        path.join(tmp, `${name}.${ext}`),
      );
      writeFileSync(file!, index);
      writeFileSync(vecFile!, vectors);
      writeFileSync(idFile!, new Uint8Array(ids.buffer));
      const [info, recall] = await runPythonJson<[Res<Info>, Res<Recall>]>(
        FAISS_115_PYTHON,
        CHECK,
        ['batch'],
        JSON.stringify([
          { cmd: 'info', file, ids: true },
          {
            cmd: 'recall',
            file,
            vectors: vecFile,
            doc_ids: idFile,
            data_type: c.dataType,
            dimension: c.dimension,
            k: 10,
            ef: 100,
            num_queries: queries,
            space: c.space,
          },
        ]),
      );
      expect(info.ok, info.error).toBe(true);
      expect(info.result!.ids).toEqual(Array.from(ids));
      expect(recall.ok, recall.error).toBe(true);
      expect(recall.result!.recall).toBeGreaterThanOrEqual(0.9);
      return { info: info.result!, recall: recall.result!, file: file! };
    }

    /** How often the service (any replica) logged warm build worker `pid` ready for another job. */
    function readyLines(pid: number): number {
      const records =
        replicas.length > 0
          ? replicas.flatMap((r) => r.records())
          : svc!.logs.map((l) => JSON.parse(l) as LogRecord);
      return records.filter((r) => r.msg === 'build worker ready' && r.worker === pid).length;
    }

    /** Whether the service (any replica) has logged `msg` for the job. */
    function logged(jobId: string, msg: string): boolean {
      const records =
        replicas.length > 0
          ? replicas.flatMap((r) => r.records())
          : svc!.logs.map((l) => JSON.parse(l) as LogRecord);
      return records.some((r) => r.msg === msg && (r as { jobId?: string }).jobId === jobId);
    }

    /** The build worker of a job, on whichever replica runs it. */
    async function workerPid(jobId: string): Promise<number> {
      return replicas.length > 0 ? (await workerOf(replicas, jobId)).pid : workerPidOf(svc!, jobId);
    }

    describe('failures end FAILED_INDEX_BUILD with a clear message while other jobs complete', () => {
      const base: Case = { name: 'fail', dataType: 'float', space: 'l2', dimension: 16, count: 800 };

      async function failureOf(body: Record<string, unknown>): Promise<string> {
        const s = await client.poll(await client.build(body), { intervalMs: 0 });
        expect(s.task_status).toBe('FAILED_INDEX_BUILD');
        expect(s.file_name).toBeNull();
        return s.error_message!;
      }

      it('a vectors blob shorter than doc_count implies', async () => {
        const good = await uploadSegment(
          { ...base, name: 'good-neighbour' },
          knnvecFor(base, 1),
          docIdsFor(base.count),
        );
        const short = await uploadSegment(
          base,
          knnvecFor(base, 2).subarray(0, 16 * 4 * 700),
          docIdsFor(base.count),
        );
        const okJob = client.build(good.body).then((id) => client.poll(id, { intervalMs: 0 }));
        const message = await failureOf(short.body);
        // vectors/'s message (the one check of the .knnvec's size), made before any byte was downloaded.
        expect(message).toMatch(/\.knnvec: \.knnvec holds 44800 bytes, but doc_count 800 × dimension 16 /);
        expect(message).toContain(
          'needs 51200 bytes; dimension 14 would fit doc_count 800; doc_count 700 would fit dimension 16',
        );
        expect((await okJob).task_status).toBe('COMPLETED_INDEX_BUILD');
      });

      it('a doc ids blob with fewer ids than doc_count', async () => {
        const { body } = await uploadSegment(base, knnvecFor(base, 5), docIdsFor(base.count - 1));
        expect(await failureOf(body)).toMatch(
          /\.knndid: \.knndid holds 799 doc ids \(3196 bytes\) but doc_count is 800 \(3200 bytes expected\)$/,
        );
      });

      it('a missing vectors object', async () => {
        const { body } = await uploadSegment(base, knnvecFor(base, 3), docIdsFor(base.count));
        const message = await failureOf({
          ...body,
          vector_path: (body.vector_path as string).replace('.knnvec', '_gone.knnvec'),
        });
        expect(message).toMatch(/_gone\.knnvec/);
        expect(message).toMatch(/not found|does not exist|no such/i);
      });

      it('NaN in float vectors', async () => {
        const v = new Float32Array(knnvecFor(base, 4).buffer.slice(0));
        v[16 * 123 + 5] = Number.NaN;
        const { body } = await uploadSegment(base, new Uint8Array(v.buffer), docIdsFor(base.count));
        const message = await failureOf(body);
        expect(message).toMatch(/NaN|not finite|non-finite/i);
        expect(message).toMatch(/123/);
      });

      it('doc ids that are not strictly increasing', async () => {
        const ids = docIdsFor(base.count);
        ids[10] = ids[9]!;
        const { body } = await uploadSegment(base, knnvecFor(base, 6), ids);
        expect(await failureOf(body)).toMatch(/increasing/i);
      });

      it.skipIf(EXTERNAL || topology.replicas)(
        ownServiceOnly('S3 unreachable', 'its S3 is not ours to break'),
        async () => {
          const broken = await startRealService(
            s3StoreSettings({ endpoint: 'http://127.0.0.1:9', maxAttempts: 2, connectTimeoutMs: 500 }),
          );
          try {
            const c = new KnnClient({ endpoint: broken.url });
            const { body } = await uploadSegment(base, knnvecFor(base, 7), docIdsFor(base.count));
            const s = await c.poll(await c.build(body), { intervalMs: 0, timeoutMs: 60_000 });
            expect(s.task_status).toBe('FAILED_INDEX_BUILD');
            expect(s.error_message).toMatch(/127\.0\.0\.1:9|unreachable|connect/i);
            console.log(`S3 unreachable -> ${s.error_message}`);
          } finally {
            await broken.close();
          }
        },
      );

      it.skipIf(EXTERNAL)(
        ownServiceOnly('kill -9 of a build worker', 'its processes are not ours'),
        async () => {
          const big: Case = { name: 'victim', dataType: 'float', space: 'l2', dimension: 64, count: 60_000 };
          const victim = await uploadSegment(big, knnvecFor(big, 8), docIdsFor(big.count));
          const bystander = await uploadSegment(
            { ...base, name: 'bystander' },
            knnvecFor(base, 9),
            docIdsFor(base.count),
          );
          const victimId = await client.build(victim.body);
          const okJob = client.build(bystander.body).then((id) => client.poll(id, { intervalMs: 0 }));
          const pid = await workerPid(victimId);
          // Killed once its index upload is open (the vectors' copy starts with the job) and the service knows it:
          // the service aborts it.
          const victimUpload = async () =>
            (await listMultipartUploads(s3, bucket)).filter((u) => u.key.startsWith(victim.folder));
          await expect
            .poll(() => logged(victimId, 'index upload open'), { timeout: 20_000, interval: 20 })
            .toBe(true);
          expect(await victimUpload()).toHaveLength(1);
          process.kill(pid, 'SIGKILL');
          const s = await client.poll(victimId, { intervalMs: 0 });
          expect(s.task_status).toBe('FAILED_INDEX_BUILD');
          expect(s.error_message).toMatch(/killed \(SIGKILL\)/);
          expect(await victimUpload()).toEqual([]);
          expect((await okJob).task_status).toBe('COMPLETED_INDEX_BUILD');
          // The service is still up and builds again.
          expect((await fetch(`${url}/_heart_beat`)).status).toBe(200);
        },
      );

      it.skipIf(EXTERNAL)(
        ownServiceOnly(
          'cancel (DELETE /_jobs/{id}) stops the worker and leaves nothing behind',
          'its processes are not ours',
        ),
        async () => {
          const big: Case = {
            name: 'cancelled',
            dataType: 'float',
            space: 'l2',
            dimension: 64,
            count: 60_000,
          };
          const { folder, body } = await uploadSegment(big, knnvecFor(big, 10), docIdsFor(big.count));
          const id = await client.build(body);
          const pid = await workerPid(id);
          const readyBefore = readyLines(pid);
          expect((await fetch(`${url}/_jobs/${id}`, { method: 'DELETE' })).status).toBe(200);
          expect(await client.status(id)).toEqual({
            task_status: 'FAILED_INDEX_BUILD',
            file_name: null,
            error_message: 'cancelled',
          });
          // The worker stopped the job: it is gone, or (a warm worker) ready for the next job.
          await waitFor(() => !processAlive(pid) || readyLines(pid) > readyBefore, 10_000);
          const keys = await listObjectKeys(s3, bucket);
          expect(keys.filter((k) => k.startsWith(folder) && k.endsWith('.faiss'))).toEqual([]);
          expect(await listMultipartUploads(s3, bucket)).toEqual([]);
        },
      );
    });
  },
);

function ownServiceOnly(name: string, why: string): string {
  return EXTERNAL ? `${name} (skipped against an external service: ${why})` : name;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

type Res<T> = { ok: boolean; result?: T; error?: string };
interface Info {
  ntotal: number;
  d: number;
  ids: number[];
}
interface Recall {
  recall: number;
  unknown_ids: number;
}

/** The pid of the worker running `jobId`, from the service's 'worker started' log line. */
async function workerPidOf(svc: RealService, jobId: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    for (const line of svc.logs) {
      const rec = JSON.parse(line) as { jobId?: string; worker?: number; msg?: string };
      if (rec.jobId === jobId && rec.msg === 'worker started' && rec.worker) return rec.worker;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no worker started for ${jobId}`);
}
