// End-to-end benchmark: a k-NN-style build through the real service and a real S3 server (Ceph RGW on loopback),
// timed per phase (download, build, upload) as the job's worker measured them, plus the wall time the client saw.
//
//   npm run bench -- e2e [--sizes 100000,1000000] [--dimension 128] [--builder auto|cpu|gpu]
//
// Starts its own S3 test server unless S3_TEST_DIR / S3_TEST_ENDPOINT names a running one (scripts/s3-test-server.sh).
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';

import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { parseArgs } from 'node:util';

import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { plannerFor } from '../src/pipeline/plan.js';
import { createProcessBuild } from '../src/pipeline/process-build.js';
import type { JobResult } from '../src/pipeline/run-job.js';
import { workerConfigFrom } from '../src/pipeline/worker-config.js';
import { createService } from '../src/service.js';
import { usableGpuCount } from '../src/builders/choose.js';
import { probeGpu } from '../src/builders/gpu-probe.js';
import { KnnClient } from '../test/helpers/knn-client.js';
import { runningS3TestServer, startS3TestServer, stopS3TestServer } from '../test/helpers/s3-server.js';
import { clusteredFloat } from '../test/helpers/synthetic.js';
import { type Row, printTable, writeResults } from './report.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100000,1000000' },
    dimension: { type: 'string', default: '128' },
    builder: { type: 'string', default: 'auto' },
  },
});
const sizes = args.sizes.split(',').map(Number);
const d = Number(args.dimension);

const running = runningS3TestServer();
const server = running ?? (await startS3TestServer());
const s3 = new S3Client({
  endpoint: server.endpoint,
  region: server.region,
  forcePathStyle: true,
  credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const bucket = `bench-e2e-${randomBytes(4).toString('hex')}`;
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
const keys: string[] = [];
const put = async (key: string, body: Uint8Array) => {
  keys.push(key);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }));
};

const settings = loadSettings({
  BUILDER: args.builder,
  LOG_LEVEL: 'warn',
  PORT: '0',
  HOST: '127.0.0.1',
  CPU_MEMORY_LIMIT: '20',
});
const gpu = await probeGpu(0);
const config = workerConfigFrom(settings);
config.storage = {
  kind: 's3',
  endpoint: server.endpoint,
  region: server.region,
  credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  checksums: 'md5',
};
const results = new Map<string, JobResult>();
const service = await createService({
  settings,
  log: createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() })),
  build: createProcessBuild({ config, onResult: (ctx, r) => results.set(ctx.id, r) }),
  plan: plannerFor(settings, gpu),
  gpuDeviceCount: usableGpuCount(gpu),
  version: 'bench',
});
await service.app.listen({ host: '127.0.0.1', port: 0 });
const addr = service.app.server.address() as { port: number };
const client = new KnnClient({ endpoint: `http://127.0.0.1:${addr.port}` });

const rows: Row[] = [];
try {
  for (const n of sizes) {
    const vectors = clusteredFloat({ count: n, dimension: d, seed: n });
    const ids = Int32Array.from({ length: n }, (_, i) => i);
    const base = `bench/${n}x${d}`;
    await put(`${base}.knnvec`, new Uint8Array(vectors.buffer));
    await put(`${base}.knndid`, new Uint8Array(ids.buffer));
    keys.push(`${base}.faiss`);
    const t0 = performance.now();
    const id = await client.build({
      container_name: bucket,
      vector_path: `${base}.knnvec`,
      doc_id_path: `${base}.knndid`,
      tenant_id: 'bench',
      dimension: d,
      doc_count: n,
      index_parameters: {
        space_type: 'l2',
        algorithm_parameters: { m: 16, ef_construction: 100, ef_search: 100 },
      },
    });
    const status = await client.poll(id, { intervalMs: 50, timeoutMs: 3_600_000 });
    const wall = (performance.now() - t0) / 1000;
    if (status.task_status !== 'COMPLETED_INDEX_BUILD')
      throw new Error(`build failed: ${status.error_message}`);
    const r = results.get(id)!;
    rows.push({
      vectors: n,
      dimension: d,
      builder: r.builder,
      format: r.format,
      download_s: r.seconds.download,
      build_s: r.seconds.build,
      upload_s: r.seconds.upload,
      client_wall_s: Math.round(wall * 100) / 100,
      MiB_in: Math.round(r.bytesDownloaded / 2 ** 20),
      MiB_out: Math.round(r.bytesUploaded / 2 ** 20),
    });
  }
} finally {
  await service.shutdown(10_000);
  for (const Key of keys)
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key })).catch(() => undefined);
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  if (!running && server.dir) await stopS3TestServer(server.dir);
}
printTable(`End to end through the service and S3 (RGW on loopback), m 16, ef_construction 100`, rows);
writeResults('e2e', { rows, settings: { maxWorkers: settings.maxWorkers, builder: settings.builder } });
