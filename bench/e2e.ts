// End-to-end benchmark: a k-NN-style build through the real service and a real store (Ceph RGW on loopback, or
// the local store), timed per phase (download, build, upload) as the job's worker measured them, the job's total,
// the store-side copy of the vectors that ran while the graph built (copy_s, copy_in_build_s), the wall time
// the client saw, the bytes actually sent by the upload and those the store copied itself (COPY_STORED_VECTORS).
//
//   npm run bench -- e2e [--sizes 100000,1000000] [--dimension 128] [--builder auto|cpu|gpu]
//                        [--types float,half_float,byte,binary] [--store s3|local] [--copy on|off|both]
//                        [--name e2e] [--repeat 1]
//
// BENCH_SERVICE_LOG=file keeps the service's log at info level; LOCAL_READ_HUGE_PAGES=false turns off huge pages
// on the local store's read buffers (src/storage/settings.ts).
// --repeat N runs every build N times in a row (column `run`), each as k-NN sends it: its own segment paths (the
// `.knnvec` and `.knndid` linked, or copied server-side on S3, under a new name), so its own new `.faiss`;
// --same-key rebuilds into the one key instead (the index replaced each time, as a retried build would). with warm workers (WARM_WORKERS, the default) runs
// 2.. find a worker whose GPU is set up already; WARM_WORKERS=false in the environment gives each job a fresh
// process (the cold cost every time). scripts/gpu-check.sh warm compares the two.
//
// With --store s3 it starts its own S3 test server unless S3_TEST_DIR / S3_TEST_ENDPOINT names a running one
// (scripts/s3-test-server.sh). Vectors: clustered up to 200k; larger sets repeat 200k clustered vectors with
// noise (generated in seconds, as distinct as real ones for the builder).
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  createWriteStream,
  fsyncSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';

import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { parseArgs } from 'node:util';

import { usableGpuCount } from '../src/builders/choose.js';
import { createProcessBuild } from '../src/jobs/process-build.js';
import { processBuildOptionsFrom } from '../src/jobs/worker-config.js';
import type { JobResult } from '../src/pipeline/run-job.js';
import { startService } from '../src/run.js';
import { KnnClient } from '../test/helpers/knn-client.js';
import {
  runningS3TestServer,
  s3ClientFor,
  startS3TestServer,
  stopS3TestServer,
} from '../test/helpers/s3-server.js';
import { clusteredBinary, clusteredFloat, toBits, toInt8 } from '../test/helpers/synthetic.js';
import type { DataType } from '../src/vectors/types.js';
import { type Row, printTable, writeResults } from './report.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100000,1000000' },
    dimension: { type: 'string', default: '128' },
    builder: { type: 'string', default: 'auto' },
    types: { type: 'string', default: 'float' },
    store: { type: 'string', default: 's3' },
    copy: { type: 'string', default: 'on' },
    name: { type: 'string', default: 'e2e' },
    repeat: { type: 'string', default: '1' },
    'same-key': { type: 'boolean', default: false },
  },
});
const sizes = args.sizes.split(',').map(Number);
const d = Number(args.dimension);
const types = args.types.split(',') as DataType[];
const copyModes = args.copy === 'both' ? [true, false] : [args.copy !== 'off'];
const repeat = Math.max(1, Number(args.repeat));
const useS3 = args.store === 's3';

const running = useS3 ? runningS3TestServer() : undefined;
const server = useS3 ? (running ?? (await startS3TestServer())) : undefined;
const s3 = server ? s3ClientFor(server) : undefined;
const bucket = `bench-e2e-${randomBytes(4).toString('hex')}`;
const localRoot = useS3
  ? undefined
  : mkdtempSync(path.join(process.env.BENCH_LOCAL_ROOT ?? os.tmpdir(), 'e2e-'));
if (s3) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
else mkdirSync(path.join(localRoot!, bucket));
const keys: string[] = [];
/** Stores an object given as chunks (over 4 GiB it must be the local store: one PutObject stops at 5 GB). */
const put = async (key: string, body: Uint8Array | Uint8Array[]) => {
  keys.push(key);
  const chunks = Array.isArray(body) ? body : [body];
  if (!s3) {
    const file = path.join(localRoot!, bucket, key);
    mkdirSync(path.dirname(file), { recursive: true });
    const fd = openSync(file, 'w');
    try {
      for (const chunk of chunks) writeSync(fd, chunk);
      // On disk before the job starts (still in the page cache): its writeback would otherwise compete with the
      // job's own writes, which a segment k-NN wrote well before the build does not.
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return;
  }
  const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: whole, ContentLength: whole.length }));
};

/** The segment's blobs under another name, without sending them again (a hard link; S3 CopyObject). */
async function alias(from: string, to: string): Promise<string> {
  for (const ext of ['.knnvec', '.knndid']) {
    keys.push(to + ext);
    if (s3) {
      await s3.send(
        new CopyObjectCommand({ Bucket: bucket, Key: to + ext, CopySource: `${bucket}/${from}${ext}` }),
      );
    } else linkSync(path.join(localRoot!, bucket, from + ext), path.join(localRoot!, bucket, to + ext));
  }
  keys.push(`${to}.faiss`);
  return to;
}

/** Vectors per generated chunk: typed arrays stop at 4 GiB in Node 20, so big sets come in pieces. */
const CHUNK_VECTORS = 250_000;

/**
 * Bench vectors as chunks of `.knnvec` bytes: clustered up to 200k vectors; beyond that 200k clustered vectors
 * repeated with a little noise (fast to make, and as distinct as real vectors for the builder).
 */
function* knnvec(type: DataType, n: number, dimension: number): Generator<Uint8Array> {
  if (n <= 200_000) {
    if (type === 'binary') return yield clusteredBinary({ count: n, dimension, seed: 7 });
    const x = clusteredFloat({ count: n, dimension, seed: 7 });
    return yield new Uint8Array((type === 'byte' ? toInt8(x) : x).buffer);
  }
  const base = clusteredFloat({ count: 200_000, dimension, seed: 7 });
  let seed = 0x9e3779b9;
  for (let first = 0; first < n; first += CHUNK_VECTORS) {
    const count = Math.min(CHUNK_VECTORS, n - first);
    const x = new Float32Array(count * dimension);
    for (let i = 0; i < count; i++) {
      const from = ((first + i) % 200_000) * dimension;
      for (let j = 0; j < dimension; j++) {
        seed ^= seed << 13;
        seed ^= seed >>> 17;
        seed ^= seed << 5;
        x[i * dimension + j] = base[from + j]! + ((seed >>> 0) / 2 ** 32 - 0.5) * 0.02;
      }
    }
    if (type === 'binary') yield toBits(x);
    else if (type === 'byte') {
      // The clustered data lies within about [-6.2, 6.2]: a fixed scale keeps chunks consistent.
      // A plain loop: Int8Array.from(x, fn) goes through a JS list of every value (out of heap at 250k x 768).
      const codes = new Int8Array(x.length);
      for (let i = 0; i < x.length; i++) codes[i] = Math.max(-128, Math.min(127, Math.round(x[i]! * 20)));
      yield new Uint8Array(codes.buffer);
    } else yield new Uint8Array(x.buffer);
  }
}

const results = new Map<string, JobResult>();
// The workers' settings (each run below sets copyStoredVectors on them), and whether they are warm.
let workers: ReturnType<typeof processBuildOptionsFrom> | undefined;
let warm = true;
const service = await startService({
  env: {
    BUILDER: args.builder,
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    CPU_MEMORY_LIMIT: String(Math.floor((os.totalmem() / 2 ** 30) * 0.8)),
    // A GPU memory cap from the environment (scripts/gpu-check.sh sets 16 GiB for the e2e step).
    ...(process.env.GPU_MEMORY_LIMIT ? { GPU_MEMORY_LIMIT: process.env.GPU_MEMORY_LIMIT } : {}),
    ...(process.env.WARM_WORKERS ? { WARM_WORKERS: process.env.WARM_WORKERS } : {}),
    ...(process.env.LOCAL_READ_HUGE_PAGES
      ? { LOCAL_READ_HUGE_PAGES: process.env.LOCAL_READ_HUGE_PAGES }
      : {}),
    ...(process.env.BENCH_SERVICE_LOG ? { LOG_LEVEL: 'info' } : {}),
  },
  // BENCH_SERVICE_LOG=file keeps the service's log (info: the pool's workers and each job's line); else none.
  logDestination: process.env.BENCH_SERVICE_LOG
    ? createWriteStream(process.env.BENCH_SERVICE_LOG)
    : new Writable({ write: (_c, _e, cb) => cb() }),
  buildFactory: (settings, log, gpu) => {
    workers = processBuildOptionsFrom(settings, usableGpuCount(gpu));
    warm = settings.workers.warm;
    workers.config.storage = server
      ? {
          kind: 's3',
          endpoint: server.endpoint,
          region: server.region,
          credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
          checksums: 'md5',
        }
      : { ...settings.storage, kind: 'local', localRoot: localRoot! };
    return createProcessBuild({ ...workers, log }); // the pool's events in BENCH_SERVICE_LOG
  },
});
// Each job's measurements, as the metrics get them.
service.scheduler.on('finished', (job, outcome) => {
  if (outcome?.measurements) results.set(job.id, outcome.measurements);
});
const addr = service.app.server.address() as { port: number };
const client = new KnnClient({ endpoint: `http://127.0.0.1:${addr.port}` });

const rows: Row[] = [];
try {
  for (const n of sizes) {
    for (const type of types) {
      const vectors = [...knnvec(type, n, d)];
      const ids = Int32Array.from({ length: n }, (_, i) => i);
      const base = `bench/${type}-${n}x${d}`;
      await put(`${base}.knnvec`, vectors);
      await put(`${base}.knndid`, new Uint8Array(ids.buffer));
      keys.push(`${base}.faiss`);
      let builds = 0;
      for (const [copy, run] of copyModes.flatMap((c) =>
        Array.from({ length: repeat }, (_, i) => [c, i + 1] as const),
      )) {
        workers!.config.copyStoredVectors = copy;
        const segment = builds++ === 0 || args['same-key'] ? base : await alias(base, `${base}-${builds}`);
        const t0 = performance.now();
        const id = await client.build({
          container_name: bucket,
          vector_path: `${segment}.knnvec`,
          doc_id_path: `${segment}.knndid`,
          tenant_id: `bench-${copy ? 'copy' : 'stream'}-${run}`,
          dimension: d,
          doc_count: n,
          data_type: type,
          index_parameters: {
            space_type: type === 'binary' ? 'hamming' : 'l2',
            algorithm_parameters: { m: 16, ef_construction: 100, ef_search: 100 },
          },
        });
        const status = await client.poll(id, { intervalMs: 50, timeoutMs: 3_600_000 });
        const wall = (performance.now() - t0) / 1000;
        if (status.task_status !== 'COMPLETED_INDEX_BUILD')
          throw new Error(`build failed: ${status.error_message}`);
        const r = results.get(id)!;
        const indexBytes = r.bytesUploaded + r.bytesCopied;
        rows.push({
          ...(repeat > 1 ? { run, warm_workers: warm } : {}),
          type,
          vectors: n,
          dimension: d,
          builder: r.builder,
          format: r.format,
          download_s: r.seconds.download,
          build_s: r.seconds.build,
          upload_s: r.seconds.upload,
          // The job's own total (phases in a row), and the vectors' store-side copy that ran during the build.
          job_total_s: r.wallSeconds,
          copy_s: r.overlap.copySeconds,
          copy_in_build_s: r.overlap.copyDuringBuildSeconds,
          client_wall_s: Math.round(wall * 100) / 100,
          MiB_in: Math.round(r.bytesDownloaded / 2 ** 20),
          index_MiB: Math.round(indexBytes / 2 ** 20),
          MiB_sent: Math.round(r.bytesUploaded / 2 ** 20),
          sent_ratio: Math.round((r.bytesUploaded / indexBytes) * 1000) / 1000,
          upload_path: r.uploadPath.path,
          overlap: r.overlap.reason ? `no: ${r.overlap.reason.slice(0, 60)}` : 'yes',
          peak_GPU_GiB: Math.round((r.peakDeviceBytes / 2 ** 30) * 10) / 10,
        });
      }
    }
  }
} finally {
  await service.shutdown(10_000);
  if (s3) {
    for (const Key of keys)
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key })).catch(() => undefined);
    await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  }
  if (localRoot) rmSync(localRoot, { recursive: true, force: true });
  if (!running && server?.dir) await stopS3TestServer(server.dir);
}
const where = s3 ? 'S3 (RGW on loopback)' : 'the local store';
printTable(`End to end through the service and ${where}, m 16, ef_construction 100`, rows);
writeResults(args.name, {
  rows,
  store: args.store,
  settings: { maxWorkers: service.settings.maxWorkers, builder: service.settings.builder },
});
