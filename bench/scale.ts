// Scale-out benchmark: N service replicas (separate processes, QUEUE_BACKEND=redis, CPU builder) behind a
// round-robin client, sharing one redis-server and the S3 test server on loopback. A batch of small jobs is sent
// at once; meanwhile pollers hammer GET /_status (round robin) with no pause. Reported per N: jobs per minute
// and the _status latency (p50, p99) under that load. One row with the memory backend (one process) is the
// baseline for what Redis costs. Ratios between rows of one run are meaningful; absolute numbers depend on the
// machine (on a 2-core machine the replicas share the same cores, so throughput flattens early).
//
//   npm run bench -- scale [--replicas 1,2,3] [--jobs 24] [--count 2000] [--dimension 16] [--pollers 8]
//                          [--workers 1] [--no-memory]
//
// Starts its own S3 test server unless S3_TEST_DIR / S3_TEST_ENDPOINT names a running one (scripts/s3-test-server.sh).
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';

import { KnnClient } from '../test/helpers/knn-client.js';
import { RedisTestServer, redisUnavailable } from '../test/helpers/redis-server.js';
import { type Replica, replicaEnv, startReplicas } from '../test/helpers/replicas.js';
import {
  runningS3TestServer,
  s3ClientFor,
  startS3TestServer,
  stopS3TestServer,
} from '../test/helpers/s3-server.js';
import { clusteredFloat } from '../test/helpers/synthetic.js';
import { type Row, printTable, writeResults } from './report.js';

const { values: args } = parseArgs({
  options: {
    replicas: { type: 'string', default: '1,2,3' },
    jobs: { type: 'string', default: '24' },
    count: { type: 'string', default: '2000' },
    dimension: { type: 'string', default: '16' },
    pollers: { type: 'string', default: '8' },
    workers: { type: 'string', default: '1' },
    'no-memory': { type: 'boolean', default: false },
  },
});
const replicaCounts = args.replicas.split(',').map(Number);
const jobs = Number(args.jobs);
const count = Number(args.count);
const dimension = Number(args.dimension);
const pollers = Number(args.pollers);
const missing = redisUnavailable();
if (missing) throw new Error(missing);

const running = runningS3TestServer();
const server = running ?? (await startS3TestServer());
const s3 = s3ClientFor(server);
const bucket = `bench-scale-${randomBytes(4).toString('hex')}`;
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
const redis = await RedisTestServer.start();

// One segment's blobs, copied under many names: each name is its own job.
const vectors = clusteredFloat({ count, dimension, seed: 7 });
const ids = Int32Array.from({ length: count }, (_, i) => i);
const bodyFor = (run: string, i: number) => ({
  container_name: bucket,
  vector_path: `${run}/seg${i}.knnvec`,
  doc_id_path: `${run}/seg${i}.knndid`,
  tenant_id: 'bench',
  dimension,
  doc_count: count,
  index_parameters: { space_type: 'l2', algorithm_parameters: { m: 16, ef_construction: 64, ef_search: 64 } },
});
async function upload(run: string): Promise<void> {
  const put = (Key: string, Body: Uint8Array) =>
    s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body, ContentLength: Body.length }));
  for (let i = 0; i < jobs; i++) {
    await put(`${run}/seg${i}.knnvec`, new Uint8Array(vectors.buffer));
    await put(`${run}/seg${i}.knndid`, new Uint8Array(ids.buffer));
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(label: string, backend: 'memory' | 'redis', n: number): Promise<Row> {
  const run = `${label}-${n}`;
  await upload(run);
  const env = replicaEnv(server, redis.url, {
    QUEUE_BACKEND: backend,
    REDIS_PREFIX: `bench-${run}-${randomBytes(3).toString('hex')}`,
    MAX_WORKERS: args.workers,
    LOG_LEVEL: 'warn',
  });
  const replicas: Replica[] = await startReplicas(n, env);
  const urls = replicas.map((r) => r.url);
  try {
    const client = new KnnClient({ endpoint: urls });
    const t0 = performance.now();
    const jobIds = await Promise.all(Array.from({ length: jobs }, (_, i) => client.build(bodyFor(run, i))));
    let done = false;
    const latencies: number[] = [];
    const poll = async (k: number) => {
      for (let i = k; !done; i++) {
        const url = urls[i % urls.length]!;
        const t = performance.now();
        const res = await fetch(`${url}/_status/${jobIds[i % jobIds.length]}`);
        await res.arrayBuffer();
        latencies.push(performance.now() - t);
      }
    };
    const pollersDone = Promise.all(Array.from({ length: pollers }, (_, k) => poll(k)));
    const finals = await Promise.all(
      jobIds.map((id) => new KnnClient({ endpoint: urls }).poll(id, { intervalMs: 100, timeoutMs: 600_000 })),
    );
    const seconds = (performance.now() - t0) / 1000;
    done = true;
    await pollersDone;
    const failed = finals.filter((s) => s.task_status !== 'COMPLETED_INDEX_BUILD');
    if (failed.length > 0) throw new Error(`${failed.length} jobs failed: ${failed[0]!.error_message}`);
    latencies.sort((a, b) => a - b);
    return {
      backend,
      replicas: n,
      workers_per_replica: Number(args.workers),
      jobs,
      seconds: Math.round(seconds * 100) / 100,
      jobs_per_min: Math.round((jobs / seconds) * 60 * 10) / 10,
      status_polls: latencies.length,
      status_p50_ms: Math.round(percentile(latencies, 50) * 100) / 100,
      status_p99_ms: Math.round(percentile(latencies, 99) * 100) / 100,
    };
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
  }
}

const rows: Row[] = [];
try {
  if (!args['no-memory']) rows.push(await measure('memory', 'memory', 1));
  for (const n of replicaCounts) rows.push(await measure('redis', 'redis', n));
} finally {
  await redis.close();
  for (;;) {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!);
    if (keys.length === 0) break;
    await Promise.all(keys.map((Key) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }))));
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  if (!running && server.dir) await stopS3TestServer(server.dir);
}
printTable(
  `Scale-out: ${jobs} jobs of ${count} x ${dimension} float (CPU builder, 1 thread), ${pollers} pollers on /_status, round robin`,
  rows,
);
writeResults('scale', {
  rows,
  settings: { jobs, count, dimension, pollers, workersPerReplica: Number(args.workers) },
});
