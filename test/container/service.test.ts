// The service as packaged, run by scripts/container-test.sh: the API image under podman with host networking,
// configured for the S3 test server, named here by KNN_SERVICE_URL. A short smoke test (health, metrics, OpenAPI,
// one build through S3 read back by our Faiss reader); test/integration/knn-faithful.test.ts runs in the same
// call for the full k-NN behaviour. Without KNN_SERVICE_URL it skips and says why.
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readFaissIndex } from '../../src/faiss-format/index.js';
import { KnnClient } from '../helpers/knn-client.js';
import {
  createTestBucket,
  deleteTestBucket,
  getObject,
  listObjectKeys,
  putObject,
  s3Unavailable,
  testS3Client,
} from '../helpers/s3.js';
import { clusteredFloat } from '../helpers/synthetic.js';

const URL = process.env.KNN_SERVICE_URL?.replace(/\/$/, '');
const podman = spawnSync('podman', ['--version'], { stdio: 'ignore' }).status === 0;
const skipReason = URL
  ? s3Unavailable()
  : `KNN_SERVICE_URL is not set: scripts/container-test.sh builds the image and runs these against it` +
    (podman ? '' : ' (it needs podman, which is not installed here)');

describe.skipIf(skipReason)(`the packaged service${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let s3: S3Client;
  let bucket: string;

  beforeAll(async () => {
    s3 = testS3Client();
    bucket = await createTestBucket(s3, 'knn-container');
  });
  afterAll(async () => {
    if (bucket) await deleteTestBucket(s3, bucket).catch(() => undefined);
  });

  it('answers the heart beat, /metrics and /openapi.json', async () => {
    const beat = await fetch(`${URL}/_heart_beat`);
    expect(beat.status).toBe(200);
    const metrics = await fetch(`${URL}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# (HELP|TYPE) /m);
    const openapi = await fetch(`${URL}/openapi.json`);
    expect(openapi.status).toBe(200);
    const doc = (await openapi.json()) as { paths?: Record<string, unknown> };
    expect(Object.keys(doc.paths ?? {})).toEqual(expect.arrayContaining(['/_build', '/_status/{job_id}']));
  });

  it('builds an index through S3: the .faiss object is written beside the vectors and reads back', async () => {
    const count = 1200;
    const dimension = 24;
    const vectors = clusteredFloat({ count, dimension, seed: 3, clusters: 12, latentDimension: 8 });
    const ids = Int32Array.from({ length: count }, (_, i) => 2 * i + 1);
    const folder = 'knn-index/container_vectors';
    await putObject(s3, bucket, `${folder}/seg_field__1.knnvec`, new Uint8Array(vectors.buffer));
    await putObject(s3, bucket, `${folder}/seg_field__1.knndid`, new Uint8Array(ids.buffer));

    const client = new KnnClient({ endpoint: URL! });
    const jobId = await client.build({
      repository_type: 's3',
      container_name: bucket,
      vector_path: `${folder}/seg_field__1.knnvec`,
      doc_id_path: `${folder}/seg_field__1.knndid`,
      tenant_id: 'container-test',
      dimension,
      doc_count: count,
      data_type: 'float',
      engine: 'faiss',
      index_parameters: {
        space_type: 'l2',
        algorithm: 'hnsw',
        algorithm_parameters: { ef_construction: 64, ef_search: 64, m: 16 },
      },
    });
    const status = await client.poll(jobId, { intervalMs: 100, timeoutMs: 120_000 });
    expect(status.error_message).toBeNull();
    expect(status.task_status).toBe('COMPLETED_INDEX_BUILD');
    expect(status.file_name).toBe('seg_field__1.faiss');

    const key = path.posix.join(folder, status.file_name!);
    expect(await listObjectKeys(s3, bucket)).toContain(key);
    const index = readFaissIndex(new Uint8Array(await getObject(s3, bucket, key)), { arrays: true });
    expect(index.ntotal).toBe(count);
    expect(index.dimension).toBe(dimension);
    expect(index.metric).toBe('l2');
    expect(Array.from(index.arrays!.ids)).toEqual(Array.from(ids));
  });
});
