// Phase overlap (issue 12 item 2): the stored vectors are copied store-side into the index while the graph
// builds. Real parts: runJob with the real CPU builder (one thread, fixed seed: the same graph every run), the local
// store (copy_file_range) and the S3 test server (UploadPartCopy, through a fault proxy that sees and refuses
// copies). The builder here is the CPU builder behind a gate that holds the build until the test has seen the copy
// at work (or changed the source, or cancelled): so "the copy started before the build ended" is observed, not
// inferred from timings. Every file written is compared byte for byte with the one the plain streaming upload
// writes, and one is loaded and searched by Faiss 1.15 and k-NN's checker.
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JobSpec } from '../../src/build-spec.js';
import { CpuBuilder } from '../../src/builders/cpu.js';
import type { BuilderKind, GraphBuilder } from '../../src/builders/types.js';
import type { HnswLayout } from '../../src/faiss-format/hnsw-graph.js';
import { formatPolicy } from '../../src/faiss-format/policy.js';
import { type JobResult, type PipelineDeps, ioForRequest, runJob } from '../../src/pipeline/run-job.js';
import { createObjectStore, resolveStorageSettings } from '../../src/storage/index.js';
import { LocalObjectStore } from '../../src/storage/local.js';
import { type RangeCopier, nativeRangeCopier } from '../../src/storage/local-compose.js';
import type { ObjectLocation, ObjectStore, ReadOptions } from '../../src/storage/types.js';
import { tempDir } from '../helpers/faiss-files.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import type { RequestInfo } from '../helpers/fault-proxy.js';
import { checkerPath, runChecker } from '../helpers/knn-checker.js';
import { jobSpecFor } from '../helpers/job-spec.js';
import { FAISS_115_PYTHON, REPO_ROOT, faissPythonAvailable, runPythonJson } from '../helpers/python.js';
import * as s3 from '../helpers/s3.js';
import { clusteredFloat } from '../helpers/synthetic.js';

// 12 MiB of vectors: enough for S3 to copy parts (>= 5 MiB after the head's padding), quick to build.
const COUNT = 3000;
const DIMENSION = 1024;
const VECTOR_KEY = 'seg/x.knnvec';
const IDS_KEY = 'seg/x.knndid';
const INDEX_KEY = 'seg/x.faiss';
const vectors = clusteredFloat({ count: COUNT, dimension: DIMENSION, clusters: 30, seed: 5 });
const vectorBytes = Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength);
const idBytes = Buffer.from(Int32Array.from({ length: COUNT }, (_, i) => 3 * i + 1).buffer);
const differentVectors = Buffer.from(vectorBytes);
differentVectors[vectorBytes.length - 100] = differentVectors[vectorBytes.length - 100]! ^ 0xff;
// A NaN in the last vector: found by the value scan after the download, when the copy has long started.
const nanVectors = Buffer.from(vectorBytes);
nanVectors.writeFloatLE(NaN, vectorBytes.length - 8);

// half_float vectors (k-NN sends fp32; the index stores fp16, which no store holds to copy): 12 MiB as fp16,
// enough for S3 parts (>= 5 MiB) beyond the head's padding.
const HALF_COUNT = 6000;
const HALF_VECTOR_KEY = 'seg/h.knnvec';
const HALF_IDS_KEY = 'seg/h.knndid';
const HALF_INDEX_KEY = 'seg/h.faiss';
const FP16_BYTES = 2 * HALF_COUNT * DIMENSION;
const halfVectors = clusteredFloat({ count: HALF_COUNT, dimension: DIMENSION, clusters: 30, seed: 6 });
const halfVectorBytes = Buffer.from(halfVectors.buffer, halfVectors.byteOffset, halfVectors.byteLength);
const halfIdBytes = Buffer.from(Int32Array.from({ length: HALF_COUNT }, (_, i) => i).buffer);

// byte vectors (the index stores int8 codes, value + 128, which no store holds to copy): 12 MiB of codes, as
// the fp16 ones.
const BYTE_COUNT = 12_000;
const BYTE_VECTOR_KEY = 'seg/b.knnvec';
const BYTE_IDS_KEY = 'seg/b.knndid';
const BYTE_INDEX_KEY = 'seg/b.faiss';
const byteVectorBytes = Buffer.from(
  Int8Array.from(clusteredFloat({ count: BYTE_COUNT, dimension: DIMENSION, clusters: 30, seed: 7 }), (x) =>
    Math.max(-128, Math.min(127, Math.round(40 * x))),
  ).buffer,
);
const byteIdBytes = Buffer.from(Int32Array.from({ length: BYTE_COUNT }, (_, i) => 2 * i).buffer);

/** The jobs' inputs: float (copied store-side), and the two converted storages (sent while the graph builds). */
type Variant = 'float' | 'half_float' | 'byte';
const INPUTS: Record<Variant, { vectors: string; ids: string; count: number }> = {
  float: { vectors: VECTOR_KEY, ids: IDS_KEY, count: COUNT },
  half_float: { vectors: HALF_VECTOR_KEY, ids: HALF_IDS_KEY, count: HALF_COUNT },
  byte: { vectors: BYTE_VECTOR_KEY, ids: BYTE_IDS_KEY, count: BYTE_COUNT },
};

/** The converted storages: their sent bytes, and the index key and the name of the streamed reference file. */
const CONVERTED = [
  { variant: 'half_float', storage: 'sq-fp16', storedBytes: FP16_BYTES, index: HALF_INDEX_KEY },
  { variant: 'byte', storage: 'sq-int8', storedBytes: byteVectorBytes.length, index: BYTE_INDEX_KEY },
] as const;

function request(container: string, variant: Variant = 'float'): JobSpec {
  const input = INPUTS[variant];
  return jobSpecFor({
    container_name: container,
    vector_path: input.vectors,
    doc_id_path: input.ids,
    ...(variant === 'float' ? {} : { data_type: variant }),
    dimension: DIMENSION,
    doc_count: input.count,
    index_parameters: {
      space_type: 'l2',
      algorithm: 'hnsw',
      algorithm_parameters: { ef_construction: 32, ef_search: 64, m: 8 },
    },
  });
}

interface Gate {
  /** Runs before the real build starts (the copy has been started by then). */
  beforeBuild?: () => Promise<void>;
  /** Replaces the planned layout (a builder whose graph turns out other than planned). */
  layout?: (planned: HnswLayout) => HnswLayout;
}

/** The real CPU builder, its build held until `gate.beforeBuild` resolves. */
function gatedCpu(gate: Gate): GraphBuilder {
  const cpu = new CpuBuilder({ threads: 1, seed: 7 });
  return {
    kind: 'cpu',
    plannedLayout: (v, p) => (gate.layout ?? ((l) => l))(cpu.plannedLayout(v, p)),
    async build(v, p, onProgress, signal) {
      await gate.beforeBuild?.();
      return cpu.build(v, p, onProgress, signal);
    },
  };
}

function job(
  store: ObjectStore,
  container: string,
  gate: Gate = {},
  more: Partial<PipelineDeps> = {},
  variant: Variant = 'float',
  kind: BuilderKind = 'cpu', // 'gpu': the gated CPU builder stands for it, behind the deps' acquireGpu
): Promise<JobResult> {
  const r = request(container, variant);
  return runJob(r, kind, {
    io: ioForRequest(store, r),
    builders: { [kind]: gatedCpu(gate) },
    formatPolicy: formatPolicy('compatible'),
    buildDefaults: { threads: 1 },
    signal: new AbortController().signal,
    report: () => undefined,
    acquireGpu: () => Promise.reject(new Error('no GPU')),
    ...more,
  });
}

/** The store, its read of the vectors held until `hold` resolves (the copy must start while they download). */
function heldVectorRead(store: ObjectStore, hold: () => Promise<void>): ObjectStore {
  return new Proxy(store, {
    get(target, name) {
      if (name === 'read') {
        return async (at: ObjectLocation, options?: ReadOptions) => {
          if (at.key === VECTOR_KEY) await hold();
          return target.read(at, options);
        };
      }
      const value: unknown = Reflect.get(target, name);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function until(what: string, ready: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A converted storage's job: its bytes sent (not copied) while the graph built, the only reason the conversion. */
function expectSentEarly(result: JobResult, storage: string): void {
  expect(result.uploadPath).toEqual({
    path: 'stream',
    reason: `the ${storage} storage holds converted vectors`,
  });
  expect(result.overlap.reason).toBeUndefined();
  expect(result.overlap.copySeconds).toBeGreaterThan(0);
  expect(result.bytesCopied).toBe(0);
}

function expectOverlapped(result: JobResult): void {
  expect(result.uploadPath).toEqual({ path: 'copy' });
  expect(result.overlap.reason).toBeUndefined();
  expect(result.overlap.copyDuringBuildSeconds).toBeLessThanOrEqual(result.overlap.copySeconds);
  expect(result.wallSeconds).toBeGreaterThan(0);
  // Only the header, graph, the head part's padding (S3) and the id map were sent.
  expect(result.bytesCopied).toBeGreaterThan(vectorBytes.length - 5 * 2 ** 20 - 1);
}

async function expectFaissFinds(file: string, folder: string): Promise<void> {
  if (!faissPythonAvailable()) return;
  const vecFile = path.join(folder, 'x.knnvec');
  const didFile = path.join(folder, 'x.knndid');
  await writeFile(vecFile, vectorBytes);
  await writeFile(didFile, idBytes);
  const recall = await runPythonJson<{ recall: number }>(
    FAISS_115_PYTHON,
    path.join(REPO_ROOT, 'test/python/faiss_check.py'),
    [
      'recall',
      file,
      '--vectors',
      vecFile,
      '--doc-ids',
      didFile,
      '--data-type',
      'float',
      '--dimension',
      String(DIMENSION),
      '--num-queries',
      '50',
      '--k',
      '10',
      '--ef',
      '64',
    ],
  );
  expect(recall.recall).toBeGreaterThan(0.9);
}

describe('phase overlap, local store (copy_file_range while the graph builds)', () => {
  const tmp = tempDir('overlap-');
  const container = 'c';
  const folder = () => path.join(tmp.dir, container, 'seg');
  const settings = () => resolveStorageSettings({ kind: 'local', localRoot: tmp.dir });
  const temps = async () => (await readdir(folder())).filter((n) => n.startsWith('.knn-tmp-'));
  let streamed: Buffer;
  const streamedConverted = new Map<string, Buffer>();

  beforeAll(async () => {
    await mkdir(folder(), { recursive: true });
    await writeFile(path.join(folder(), 'x.knnvec'), vectorBytes);
    await writeFile(path.join(folder(), 'x.knndid'), idBytes);
    await writeFile(path.join(folder(), 'h.knnvec'), halfVectorBytes);
    await writeFile(path.join(folder(), 'h.knndid'), halfIdBytes);
    await writeFile(path.join(folder(), 'b.knnvec'), byteVectorBytes);
    await writeFile(path.join(folder(), 'b.knndid'), byteIdBytes);
    // The reference: the same job with every byte streamed after the build.
    const result = await job(createObjectStore(settings()), container, {}, { copyStoredVectors: false });
    expect(result.uploadPath.path).toBe('stream');
    expect(result.overlap).toMatchObject({ copySeconds: 0, reason: expect.stringMatching(/turned off/) });
    streamed = await readFile(path.join(folder(), 'x.faiss'));
    for (const { variant, index } of CONVERTED) {
      const converted = await job(
        createObjectStore(settings()),
        container,
        {},
        { copyStoredVectors: false },
        variant,
      );
      expect(converted.overlap.copySeconds).toBe(0);
      streamedConverted.set(variant, await readFile(path.join(tmp.dir, container, index)));
    }
  }, 120_000);
  afterAll(() => tmp.remove());

  it.skipIf(!nativeRangeCopier())(
    'copies the vectors into the temporary file before the build ends; the file equals the streamed one',
    async () => {
      const store = createObjectStore(settings());
      const result = await job(store, container, {
        // The vectors at their final offset: the temporary file is already longer than them.
        beforeBuild: () =>
          until('the vectors copied into the temporary file', async () => {
            for (const t of await temps()) {
              if ((await stat(path.join(folder(), t))).size > vectorBytes.length) return true;
            }
            return false;
          }),
      });
      expectOverlapped(result);
      expect(result.bytesCopied).toBe(vectorBytes.length);
      const written = await readFile(path.join(folder(), 'x.faiss'));
      expect(written.equals(streamed)).toBe(true);
      expect(await temps()).toEqual([]);
      await expectFaissFinds(path.join(folder(), 'x.faiss'), tmp.dir);
      const checker = checkerPath('3.8');
      if (existsSync(checker)) {
        const queries = path.join(tmp.dir, 'queries.bin');
        await writeFile(queries, vectorBytes.subarray(0, 5 * 4 * DIMENSION));
        const run = await runChecker('3.8', path.join(folder(), 'x.faiss'), queries, { k: 5 });
        expect(run.exitCode, JSON.stringify(run.error)).toBe(0);
        expect(run.queries.map((q) => q.labels[0])).toEqual([1, 4, 7, 10, 13]); // each finds itself (doc id)
      }
    },
    120_000,
  );

  it.skipIf(!nativeRangeCopier())(
    'starts the copy while the vectors still download (from their HEAD), not after',
    async () => {
      // The vectors' read waits for the copy: a copy started only after the download would never come.
      const copiedIntoTemp = async () => {
        for (const t of await temps()) {
          if ((await stat(path.join(folder(), t))).size > vectorBytes.length) return true;
        }
        return false;
      };
      const store = heldVectorRead(createObjectStore(settings()), () =>
        until('the copy to start before the vectors are read', copiedIntoTemp),
      );
      const result = await job(store, container);
      expectOverlapped(result);
      expect(result.bytesCopied).toBe(vectorBytes.length);
      expect((await readFile(path.join(folder(), 'x.faiss'))).equals(streamed)).toBe(true);
      expect(await temps()).toEqual([]);
    },
    120_000,
  );

  it('vectors that change between their HEAD and their read are copied again after the build', async () => {
    // The early copy was of the version HEAD saw; the bytes read (and built) are another: redone from those.
    const store = heldVectorRead(createObjectStore(settings()), async () => {
      // Once the copy has started (HEAD has answered), before the read: the file is replaced.
      await until('the early copy to start', async () => (await temps()).length > 0);
      await writeFile(path.join(folder(), 'x.knnvec'), differentVectors);
    });
    try {
      const result = await job(store, container);
      expect(result.overlap.reason).toMatch(/changed while it was downloaded/);
      expect(result.uploadPath.path).toBe(nativeRangeCopier() ? 'copy' : 'stream');
      const written = await readFile(path.join(folder(), 'x.faiss'));
      expect(written.includes(differentVectors)).toBe(true);
      expect(await temps()).toEqual([]);
    } finally {
      await writeFile(path.join(folder(), 'x.knnvec'), vectorBytes);
    }
  }, 120_000);

  it.each(CONVERTED)(
    '$variant: the $storage vectors are written into the temporary file while the graph builds; the file equals the streamed one',
    async ({ variant, storage, storedBytes, index }) => {
      const file = path.join(tmp.dir, container, index);
      await rm(file, { force: true });
      const result = await job(
        createObjectStore(settings()),
        container,
        {
          beforeBuild: () =>
            until(`the ${storage} vectors written into the temporary file`, async () => {
              for (const t of await temps()) {
                if ((await stat(path.join(folder(), t))).size > storedBytes) return true;
              }
              return false;
            }),
        },
        {},
        variant,
      );
      expectSentEarly(result, storage);
      expect((await readFile(file)).equals(streamedConverted.get(variant)!)).toBe(true);
      expect(await temps()).toEqual([]);
    },
    120_000,
  );

  it('byte: the int8 codes are made and sent once the build has started, not while it waits for its GPU', async () => {
    await rm(path.join(tmp.dir, container, BYTE_INDEX_KEY), { force: true });
    let tempsAtBuildStart: string[] | undefined;
    const result = await job(
      createObjectStore(settings()),
      container,
      {
        beforeBuild: async () => {
          tempsAtBuildStart = await temps();
          await until('the int8 codes written into the temporary file', async () => {
            for (const t of await temps()) {
              if ((await stat(path.join(folder(), t))).size > byteVectorBytes.length) return true;
            }
            return false;
          });
        },
      },
      // The GPU lease takes a while (another job holds the GPU, or the service's reply is slow).
      { acquireGpu: () => sleep(300).then(() => ({ device: 0, release: () => undefined })) },
      'byte',
      'gpu',
    );
    expect(tempsAtBuildStart).toEqual([]); // nothing sent before the build had its GPU
    expectSentEarly(result, 'sq-int8');
    expect(
      (await readFile(path.join(tmp.dir, container, BYTE_INDEX_KEY))).equals(streamedConverted.get('byte')!),
    ).toBe(true);
    expect(await temps()).toEqual([]);
  }, 120_000);

  it('vectors that fail the value scan (NaN) fail the job and leave no temporary file', async () => {
    await rmIndex(folder());
    await writeFile(path.join(folder(), 'x.knnvec'), nanVectors);
    try {
      // The vectors are read only once the copy has started: the scan then fails a job whose write is open.
      const store = heldVectorRead(createObjectStore(settings()), () =>
        until('the early copy to start', async () => (await temps()).length > 0),
      );
      const err = await job(store, container).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/float data must be finite: vector 2999 .* is NaN/);
      await sleep(300); // a write left running would have made its temporary file by now
      expect(await temps()).toEqual([]);
      expect(existsSync(path.join(folder(), 'x.faiss'))).toBe(false);
    } finally {
      await writeFile(path.join(folder(), 'x.knnvec'), vectorBytes);
    }
  });

  it('a cancel during the build while the copy runs leaves no index and no temporary file', async () => {
    const real = nativeRangeCopier();
    let copying = false;
    const slow: RangeCopier = async (...args) => {
      copying = true;
      await sleep(300);
      return real ? real(...args) : { bytes: args[4], method: 'pread/pwrite' as const };
    };
    const store = new LocalObjectStore(settings(), slow);
    const controller = new AbortController();
    await rmIndex(folder());
    const err = await job(
      store,
      container,
      {
        beforeBuild: async () => {
          await until('the copy to start', () => copying);
          controller.abort(new Error('cancelled by the test'));
        },
      },
      { signal: controller.signal },
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    await sleep(400); // the copy step in flight ends, then the write cleans up
    expect(await temps()).toEqual([]);
    expect(existsSync(path.join(folder(), 'x.faiss'))).toBe(false);
  });

  it('vectors that change during the build fail the job and leave nothing', async () => {
    await rmIndex(folder());
    const err = await job(createObjectStore(settings()), container, {
      beforeBuild: () => writeFile(path.join(folder(), 'x.knnvec'), differentVectors),
    }).catch((e: Error) => e);
    await writeFile(path.join(folder(), 'x.knnvec'), vectorBytes);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/changed .*build again from the new vectors/);
    expect(await temps()).toEqual([]);
    expect(existsSync(path.join(folder(), 'x.faiss'))).toBe(false);
  });

  it('a graph other than planned is caught: the copy is redone after the build, the file still right', async () => {
    const result = await job(createObjectStore(settings()), container, {
      layout: (planned) => ({ M: planned.M * 2 }), // a wrong plan: twice the slots per node
    });
    expect(result.overlap.reason).toMatch(/layout is not the planned one/);
    expect(result.overlap.copySeconds).toBe(0);
    expect(result.uploadPath.path).toBe(nativeRangeCopier() ? 'copy' : 'stream');
    expect((await readFile(path.join(folder(), 'x.faiss'))).equals(streamed)).toBe(true);
    expect(await temps()).toEqual([]);
  });
});

async function rmIndex(folder: string): Promise<void> {
  await rm(path.join(folder, 'x.faiss'), { force: true });
}

const isCopy = (r: RequestInfo) => r.method === 'PUT' && r.headers['x-amz-copy-source'] !== undefined;
/** An UploadPart of our own bytes (not a copy) into the object named `name`. */
const isPartOf = (name: string) => (r: RequestInfo) =>
  r.method === 'PUT' && /[?&]partNumber=/.test(r.url) && r.url.includes(name) && !isCopy(r);

const skipped = s3.s3Unavailable();
describe.skipIf(skipped !== undefined)(
  skipped
    ? `phase overlap, S3 (skipped: ${skipped})`
    : 'phase overlap, S3 (UploadPartCopy while the graph builds)',
  () => {
    let proxy: FaultProxy;
    let client: S3Client;
    let bucket: string;
    let store: ObjectStore;
    let streamed: Buffer;
    const streamedConverted = new Map<string, Buffer>();

    beforeAll(async () => {
      proxy = await FaultProxy.start(s3.s3TestServer().endpoint);
      client = s3.testS3Client();
      bucket = await s3.createTestBucket(client, 'overlap');
      await s3.putObject(client, bucket, VECTOR_KEY, vectorBytes);
      await s3.putObject(client, bucket, IDS_KEY, idBytes);
      await s3.putObject(client, bucket, HALF_VECTOR_KEY, halfVectorBytes);
      await s3.putObject(client, bucket, HALF_IDS_KEY, halfIdBytes);
      await s3.putObject(client, bucket, BYTE_VECTOR_KEY, byteVectorBytes);
      await s3.putObject(client, bucket, BYTE_IDS_KEY, byteIdBytes);
      store = createObjectStore(
        s3.s3StoreSettings({ writePartBytes: 5 * 2 ** 20, writeConcurrency: 2, endpoint: proxy.endpoint }),
      );
      const result = await job(store, bucket, {}, { copyStoredVectors: false });
      expect(result.uploadPath.path).toBe('stream');
      streamed = await s3.getObject(client, bucket, INDEX_KEY);
      for (const { variant, index } of CONVERTED) {
        await job(store, bucket, {}, { copyStoredVectors: false }, variant);
        streamedConverted.set(variant, await s3.getObject(client, bucket, index));
      }
    }, 120_000);
    afterAll(async () => {
      await store?.close();
      await proxy?.close();
      if (bucket) await s3.deleteTestBucket(client, bucket);
      client?.destroy();
    });

    async function expectNothingLeft(key = INDEX_KEY) {
      expect(await s3.listObjectKeys(client, bucket)).not.toContain(key);
      expect(await s3.listMultipartUploads(client, bucket)).toEqual([]);
    }

    it('copies parts before the build ends; the object equals the streamed one', async () => {
      proxy.clear();
      let copiesBeforeBuild = 0;
      const result = await job(store, bucket, {
        beforeBuild: async () => {
          await until('an UploadPartCopy to complete', () =>
            proxy.log.some((r) => isCopy(r) && r.status === 200),
          );
          copiesBeforeBuild = proxy.log.filter(isCopy).length;
        },
      });
      expect(copiesBeforeBuild).toBeGreaterThan(0);
      expectOverlapped(result);
      expect((await s3.getObject(client, bucket, INDEX_KEY)).equals(streamed)).toBe(true);
      expect(await s3.listMultipartUploads(client, bucket)).toEqual([]);
    }, 120_000);

    it('starts copying parts while the vectors still download (from their HEAD), not after', async () => {
      proxy.clear();
      const held = heldVectorRead(store, () =>
        until('an UploadPartCopy before the vectors are read', () =>
          proxy.log.some((r) => isCopy(r) && r.status === 200),
        ),
      );
      const result = await job(held, bucket);
      expectOverlapped(result);
      expect((await s3.getObject(client, bucket, INDEX_KEY)).equals(streamed)).toBe(true);
      expect(await s3.listMultipartUploads(client, bucket)).toEqual([]);
    }, 120_000);

    it.each(CONVERTED)(
      '$variant: $storage parts are uploaded while the graph builds; the object equals the streamed one',
      async ({ variant, storage, index }) => {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: index }));
        proxy.clear();
        const isPart = isPartOf(path.posix.basename(index));
        const result = await job(
          store,
          bucket,
          {
            beforeBuild: () =>
              until(`a part of the ${storage} vectors uploaded`, () =>
                proxy.log.some((r) => isPart(r) && r.status === 200),
              ),
          },
          {},
          variant,
        );
        expectSentEarly(result, storage);
        expect(proxy.log.filter(isCopy)).toEqual([]);
        expect((await s3.getObject(client, bucket, index)).equals(streamedConverted.get(variant)!)).toBe(
          true,
        );
        expect(await s3.listMultipartUploads(client, bucket)).toEqual([]);
      },
      120_000,
    );

    it('vectors that fail the value scan (NaN) fail the job and leave no multipart upload', async () => {
      proxy.clear();
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: INDEX_KEY }));
      await s3.putObject(client, bucket, VECTOR_KEY, nanVectors);
      try {
        // The vectors are read only once the index's multipart upload is open: the scan then fails a job whose
        // write is under way.
        const isCreate = (r: RequestInfo) => r.method === 'POST' && r.url.includes('?uploads');
        const held = heldVectorRead(store, () =>
          until('the index upload to open', () => proxy.log.some((r) => isCreate(r) && r.status === 200)),
        );
        const err = await job(held, bucket).catch((e: Error) => e);
        expect(err).toBeInstanceOf(Error);
        expect((err as Error).message).toMatch(/float data must be finite/);
        await expectNothingLeft();
      } finally {
        await s3.putObject(client, bucket, VECTOR_KEY, vectorBytes);
      }
    }, 120_000);

    // The request held is what runs while the graph builds: float's UploadPartCopy, byte's parts of int8 codes.
    const cancels = [
      {
        name: 'a cancel during the build while the copy runs leaves no object and no multipart upload',
        variant: 'float',
        key: INDEX_KEY,
        held: isCopy,
        sent: 'an UploadPartCopy to be sent',
      },
      {
        name: 'byte: a cancel during the build while the int8 codes upload leaves no object and no multipart upload',
        variant: 'byte',
        key: BYTE_INDEX_KEY,
        held: isPartOf('b.faiss'),
        sent: 'a part of the int8 codes to be sent',
      },
    ] as const;
    for (const { name, variant, key, held, sent } of cancels) {
      it(
        name,
        async () => {
          proxy.clear();
          await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
          proxy.inject(held, { kind: 'hang' }, 100);
          const controller = new AbortController();
          const err = await job(
            store,
            bucket,
            {
              beforeBuild: async () => {
                await until(sent, () => proxy.log.some(held));
                controller.abort(new Error('cancelled by the test'));
              },
            },
            { signal: controller.signal },
            variant,
          ).catch((e: Error) => e);
          proxy.clear();
          expect(err).toBeInstanceOf(Error);
          await expectNothingLeft(key);
        },
        120_000,
      );
    }

    it('vectors replaced during the build fail the job and leave nothing', async () => {
      proxy.clear();
      const err = await job(store, bucket, {
        beforeBuild: () => s3.putObject(client, bucket, VECTOR_KEY, differentVectors),
      }).catch((e: Error) => e);
      await s3.putObject(client, bucket, VECTOR_KEY, vectorBytes);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/changed while the index was written/);
      await expectNothingLeft();
    }, 120_000);

    it('a store that refuses the copy gets the vectors streamed, and the job says why', async () => {
      proxy.clear();
      proxy.inject(isCopy, { kind: 'status', status: 501, code: 'NotImplemented' }, 100);
      const result = await job(store, bucket);
      proxy.clear();
      expect(result.uploadPath.path).toBe('stream');
      expect(result.uploadPath.reason).toMatch(/refused UploadPartCopy \(501/);
      expect(result.bytesCopied).toBe(0);
      expect((await s3.getObject(client, bucket, INDEX_KEY)).equals(streamed)).toBe(true);
    }, 120_000);
  },
);
