// A bounded soak: the real service (worker processes, spooled uploads) against the S3 test server through the fault
// proxy, driven at random for SOAK_SECONDS (default 45): builds submitted by two tenants, cancelled, sent again and
// polled, while S3 answers some requests with 500/503, resets, truncated bodies and delays. Afterwards every job
// must have ended COMPLETED or FAILED, no worker process, spool file or multipart upload may be left, and every
// COMPLETED index must load in Faiss and find its vectors' neighbours. The seed is printed; SOAK_SEED replays it.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Fault, FaultProxy } from '../helpers/fault-proxy.js';
import { KnnClient, KnnClientError, knnBuildBody } from '../helpers/knn-client.js';
import { FAISS_115_PYTHON, faissPythonAvailable, runPythonJson } from '../helpers/python.js';
import { type RealService, startRealService } from '../helpers/real-service.js';
import {
  createTestBucket,
  deleteTestBucket,
  getObject,
  listMultipartUploads,
  putObject,
  s3StoreSettings,
  s3Unavailable,
  testS3Client,
} from '../helpers/s3.js';
import { allGone, isAlive } from '../helpers/service-process.js';
import { uniform } from '../helpers/synthetic.js';

const SOAK_MS = Number(process.env.SOAK_SECONDS ?? 45) * 1000;
const SEED = Number(process.env.SOAK_SEED ?? Date.now() % 100_000);
const CHECK = 'test/python/faiss_check.py';

interface Segment {
  key: string;
  count: number;
  dimension: number;
  vectors: Uint8Array;
  ids: Int32Array;
}

/** Small segments, and one whose index (~6 MiB) is uploaded in several parts (multipart). */
const SHAPES: [number, number][] = [
  [300, 16],
  [800, 16],
  [1200, 8],
  [2000, 16],
  [1500, 32],
  [16_000, 64],
];

const FAULTS: Fault[] = [
  { kind: 'status', status: 503, code: 'SlowDown' },
  { kind: 'status', status: 500 },
  { kind: 'reset', afterBytes: 2000 },
  { kind: 'truncate', afterBytes: 1000 },
  { kind: 'reset-request', afterBytes: 4000 },
  { kind: 'delay', ms: 300 },
];

const skipReason =
  s3Unavailable() ??
  (faissPythonAvailable() ? undefined : 'Faiss 1.15 for Python missing (scripts/setup.sh --test)');

describe.skipIf(skipReason)(
  `soak: random client against faulty S3${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let s3: S3Client;
    let bucket: string;
    let proxy: FaultProxy;
    let svc: RealService | undefined;
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'knn-soak-'));
    const spool = path.join(tmp, 'spool');
    const segments: Segment[] = [];

    beforeAll(async () => {
      s3 = testS3Client();
      bucket = await createTestBucket(s3, 'soak');
      const next = uniform(SEED);
      for (const [i, [count, dimension]] of SHAPES.entries()) {
        const vectors = new Uint8Array(Float32Array.from({ length: count * dimension }, () => next()).buffer);
        const ids = Int32Array.from({ length: count }, (_, j) => 3 * j + (j % 2));
        const key = `soak/seg${i}`;
        await putObject(s3, bucket, `${key}.knnvec`, vectors);
        await putObject(s3, bucket, `${key}.knndid`, new Uint8Array(ids.buffer));
        segments.push({ key, count, dimension, vectors, ids });
      }
      proxy = await FaultProxy.start(s3StoreSettings().endpoint!);
      mkdirSync(spool);
      svc = await startRealService(
        // Small parts: many ranged GETs to fault, and the largest index goes up in several parts.
        s3StoreSettings({
          endpoint: proxy.endpoint,
          readPartBytes: 256 * 1024,
          writePartBytes: 5 * 2 ** 20,
          retryBaseDelayMs: 5,
          idleTimeoutMs: 2000,
        }),
        { MAX_WORKERS: '2', BUILD_THREADS: '1', INDEX_SPOOL_DIR: spool, SHUTDOWN_STATUS_LINGER_SECONDS: '0' },
      );
    });
    afterAll(async () => {
      await svc?.close();
      await proxy?.close();
      if (bucket) await deleteTestBucket(s3, bucket).catch(() => undefined);
      rmSync(tmp, { recursive: true, force: true });
    });

    it(
      `submits, cancels, re-submits and polls for ${SOAK_MS / 1000} s (seed ${SEED}); nothing is left behind`,
      {
        timeout: SOAK_MS + 240_000,
      },
      async () => {
        const rng = uniform(SEED + 1);
        const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
        for (const fault of FAULTS) proxy.inject(() => rng() < 0.03, fault, Number.MAX_SAFE_INTEGER);
        const client = new KnnClient({ endpoint: svc!.url, maxRetryWaitMs: 50 });
        const jobs = new Map<string, Segment>();
        const counts = { submitted: 0, refused: 0, cancelled: 0, polled: 0 };

        const deadline = Date.now() + SOAK_MS;
        while (Date.now() < deadline) {
          const r = rng();
          const known = [...jobs.keys()];
          if (r < 0.4 || known.length === 0) {
            const segment = pick(segments);
            try {
              const id = await client.build(bodyFor(bucket, segment, pick(['cluster-a', 'cluster-b'])));
              jobs.set(id, segment);
              counts.submitted++;
            } catch (e) {
              // The other tenant's job for the same .faiss is unfinished: 409 (k-NN would build on its CPUs).
              if (!(e instanceof KnnClientError && e.httpStatus === 409)) throw e;
              counts.refused++;
            }
          } else if (r < 0.55) {
            const res = await fetch(`${svc!.url}/_jobs/${pick(known)}`, { method: 'DELETE' });
            expect([200, 409]).toContain(res.status);
            if (res.status === 200) counts.cancelled++;
          } else {
            await client.status(pick(known)); // throws on anything k-NN would not accept
            counts.polled++;
          }
          await sleep(rng() * 150);
        }
        const faulted = proxy.log.filter((l) => l.fault).length;
        proxy.clear(); // S3 behaves from now on: the rest must finish

        // 1. Every job ends, COMPLETED or FAILED.
        const finals = new Map<string, string>();
        for (const id of jobs.keys()) {
          const s = await client.poll(id, { intervalMs: 100, timeoutMs: 180_000 });
          finals.set(id, s.task_status);
        }
        for (const job of svc!.service.store.all())
          expect(job.finished, `job ${job.id} ${job.phase}`).toBe(true);
        // 2. No worker process beyond the warm pool (MAX_WORKERS, idle now): a cancelled one stopped, or was killed
        //    5 s after it was asked to at the latest; one whose job failed was replaced.
        const workers = [
          ...new Set(
            svc!.logs.flatMap((l) =>
              /"msg":"worker started"/.test(l) ? [JSON.parse(l).worker as number] : [],
            ),
          ),
        ];
        for (let waited = 0; workers.filter(isAlive).length > 2 && waited < 20_000; waited += 100)
          await sleep(100);
        expect(workers.filter(isAlive).length).toBeLessThanOrEqual(2);
        // 3. Nothing left behind: no spooled file, no multipart upload.
        expect(readdirSync(spool)).toEqual([]);
        expect(await listMultipartUploads(s3, bucket)).toEqual([]);
        // 4. Every COMPLETED index loads and searches (one check per object: later builds replace earlier ones).
        const completed = new Map<string, Segment>();
        for (const [id, status] of finals)
          if (status === 'COMPLETED_INDEX_BUILD') completed.set(jobs.get(id)!.key, jobs.get(id)!);
        console.log(
          `soak seed ${SEED}: ${JSON.stringify(counts)}, ${faulted} faults injected, ${workers.length} workers, ` +
            `${[...finals.values()].filter((s) => s === 'COMPLETED_INDEX_BUILD').length}/${finals.size} jobs completed`,
        );
        expect(completed.size).toBeGreaterThan(0);
        for (const segment of completed.values()) await checkIndex(bucket, segment);
        // 5. The service's shutdown ends its workers: no process is left.
        await svc!.close();
        svc = undefined;
        expect(await allGone(workers, 20_000)).toBeGreaterThanOrEqual(0);
      },
    );

    async function checkIndex(bucket: string, segment: Segment): Promise<void> {
      const file = path.join(tmp, `${path.basename(segment.key)}.faiss`);
      const vecFile = path.join(tmp, `${path.basename(segment.key)}.knnvec`);
      const idFile = path.join(tmp, `${path.basename(segment.key)}.knndid`);
      writeFileSync(file, await getObject(s3, bucket, `${segment.key}.faiss`));
      writeFileSync(vecFile, segment.vectors);
      writeFileSync(idFile, new Uint8Array(segment.ids.buffer));
      type Res<T> = { ok: boolean; error?: string; result?: T };
      const [info, recall] = await runPythonJson<
        [Res<{ ntotal: number; d: number }>, Res<{ recall: number }>]
      >(
        FAISS_115_PYTHON,
        CHECK,
        ['batch'],
        JSON.stringify([
          { cmd: 'info', file },
          {
            cmd: 'recall',
            file,
            vectors: vecFile,
            doc_ids: idFile,
            data_type: 'float',
            dimension: segment.dimension,
            k: 10,
            ef: 100,
            num_queries: 50,
            space: 'l2',
          },
        ]),
      );
      expect(info.ok, info.error).toBe(true);
      expect(info.result).toMatchObject({ ntotal: segment.count, d: segment.dimension });
      expect(recall.ok, recall.error).toBe(true);
      expect(recall.result!.recall, segment.key).toBeGreaterThanOrEqual(0.8);
    }
  },
);

function bodyFor(bucket: string, s: Segment, tenant: string): Record<string, unknown> {
  return knnBuildBody({
    container_name: bucket,
    vector_path: `${s.key}.knnvec`,
    doc_id_path: `${s.key}.knndid`,
    tenant_id: tenant,
    dimension: s.dimension,
    doc_count: s.count,
  });
}
