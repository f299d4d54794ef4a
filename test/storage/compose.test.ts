// Composed writes (ObjectStore.writeComposed): an object whose middle range is copied store-side from another
// object — S3 UploadPartCopy against the RGW test server (through a fault proxy for refusals and hangs), and
// copy_file_range in the local store. Each case checks the exact bytes, which path was taken, and that a
// failure or cancel leaves no object, no temporary file and no multipart upload behind.
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalObjectStore } from '../../src/storage/local.js';
import { createObjectStore, resolveStorageSettings } from '../../src/storage/index.js';
import type { RangeCopier } from '../../src/storage/local-compose.js';
import { nativeRangeCopier } from '../../src/storage/local-io.js';
import type { StorageSettings } from '../../src/storage/settings.js';
import type { ComposedObject, ObjectLocation, ObjectStore } from '../../src/storage/types.js';
import { tempDir } from '../helpers/faiss-files.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import type { RequestInfo } from '../helpers/fault-proxy.js';
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
import { failure, pattern } from './fixtures.js';

const MiB = 2 ** 20;
const before = pattern(3 * MiB + 17, 7); // not a whole part: padded with the first copied bytes
const after = pattern(MiB + 3, 9);
const source = pattern(24 * MiB, 11);
const expected = Buffer.concat([before, source, after]);

/** The object = before + all of `source` (copied from `from`) + after; `local` is our copy of the source. */
function composed(from: ObjectLocation, version: string, local: Buffer = source): ComposedObject {
  // Two chunks, split off a part boundary, as a HostBlob may hold them.
  const split = 10 * MiB + 5;
  return {
    before: [before.subarray(0, 1000), before.subarray(1000)],
    beforeBytes: before.length,
    after: [after],
    afterBytes: after.length,
    copy: {
      source: from,
      sourceVersion: version,
      start: 0,
      bytes: local.length,
      local: [local.subarray(0, split), local.subarray(split)],
    },
  };
}

const isCopy = (r: RequestInfo) => r.method === 'PUT' && r.headers['x-amz-copy-source'] !== undefined;

const skipped = s3Unavailable();
describe.skipIf(skipped !== undefined)(
  skipped ? `S3 composed writes (skipped: ${skipped})` : 'S3 composed writes (UploadPartCopy)',
  () => {
    let proxy: FaultProxy;
    let client: S3Client;
    let bucket: string;
    let store: ObjectStore;
    let version: string;
    const src = () => ({ container: bucket, key: 'seg/vectors.knnvec' });
    const out = (name: string) => ({ container: bucket, key: `seg/${name}.faiss` });
    const settings: Partial<StorageSettings> = { writePartBytes: 5 * MiB, writeConcurrency: 2 };

    beforeAll(async () => {
      proxy = await FaultProxy.start(s3TestServer().endpoint);
      client = testS3Client();
      bucket = await createTestBucket(client, 'compose');
      await putObject(client, bucket, src().key, source);
      store = createObjectStore(s3StoreSettings({ ...settings, endpoint: proxy.endpoint }));
      version = (await store.read(src())).version!;
    });
    afterEach(() => proxy.clear());
    afterAll(async () => {
      await store?.close();
      await proxy?.close();
      if (bucket) await deleteTestBucket(client, bucket);
      client?.destroy();
    });

    async function expectNothingLeft(key: string) {
      expect(await listObjectKeys(client, bucket)).not.toContain(key);
      expect(await listMultipartUploads(client, bucket)).toEqual([]);
    }

    it('copies the range server-side and sends only the rest', async () => {
      const result = await store.writeComposed!(out('a'), composed(src(), version));
      expect(result.path).toBe('copy');
      expect(result.bytes).toBe(expected.length);
      expect(result.bytesSent + result.bytesCopied).toBe(expected.length);
      // head padded to 5 MiB, the tail: everything else was copied.
      expect(result.bytesSent).toBe(5 * MiB + after.length);
      expect((await getObject(client, bucket, out('a').key)).equals(expected)).toBe(true);
      const copies = proxy.log.filter(isCopy);
      expect(copies.length).toBeGreaterThan(0);
      expect(copies.every((r) => r.headers['x-amz-copy-source-if-match'] === version)).toBe(true);
    });

    it('copies an SSE-KMS source into an object with the same KMS key', async () => {
      const kmsKey = s3TestServer().kmsKeyIds[0]!;
      const from = { container: bucket, key: 'seg/kms.knnvec' };
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: from.key,
          Body: source,
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: kmsKey,
        }),
      );
      const info = await store.head(from);
      const read = await store.read(from);
      const result = await store.writeComposed!(out('kms'), composed(from, read.version!), {
        encryptLike: info,
      });
      expect(result.path).toBe('copy');
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: out('kms').key }));
      expect(head.SSEKMSKeyId).toBe(kmsKey);
      expect((await getObject(client, bucket, out('kms').key)).equals(expected)).toBe(true);
    });

    it('fails with Changed when the source was replaced after it was read, leaving nothing', async () => {
      const other = createObjectStore(s3StoreSettings(settings));
      try {
        await putObject(client, bucket, 'seg/changing.knnvec', source);
        const from = { container: bucket, key: 'seg/changing.knnvec' };
        const read = await other.read(from);
        const changed = Buffer.from(source);
        changed[12 * MiB] = changed[12 * MiB]! ^ 0xff;
        await putObject(client, bucket, from.key, changed);
        const err = await failure(other.writeComposed!(out('b'), composed(from, read.version!)));
        expect(err.code).toBe('Changed');
        expect(err.message).toMatch(/changed while the index was written/);
        await expectNothingLeft(out('b').key);
      } finally {
        await other.close();
      }
    });

    it('uploads the bytes itself when the server refuses the copy (501), and says why', async () => {
      proxy.inject(isCopy, { kind: 'status', status: 501, code: 'NotImplemented' }, 100);
      const result = await store.writeComposed!(out('c'), composed(src(), version));
      expect(result.path).toBe('stream');
      expect(result.reason).toMatch(/refused UploadPartCopy \(501 NotImplemented/);
      expect(result.bytesSent).toBe(expected.length);
      expect((await getObject(client, bucket, out('c').key)).equals(expected)).toBe(true);
    });

    it('sends everything when the range is too small to copy', async () => {
      const small = pattern(6 * MiB, 3);
      await putObject(client, bucket, 'seg/small.knnvec', small);
      const from = { container: bucket, key: 'seg/small.knnvec' };
      const v = (await store.read(from)).version!;
      const result = await store.writeComposed!(out('d'), composed(from, v, small));
      expect(result.path).toBe('stream');
      expect(result.reason).toMatch(/5 MiB part minimum/);
      const want = Buffer.concat([before, small, after]);
      expect((await getObject(client, bucket, out('d').key)).equals(want)).toBe(true);
    });

    it('a cancel in the middle of the copy leaves no object and no multipart upload', async () => {
      proxy.inject(isCopy, { kind: 'hang' }, 100);
      const controller = new AbortController();
      const watch = setInterval(() => {
        if (proxy.log.some(isCopy)) controller.abort(new Error('cancelled by the test'));
      }, 20);
      try {
        const err = await failure(
          store.writeComposed!(out('e'), composed(src(), version), { signal: controller.signal }),
        );
        expect(err.code).toBe('Aborted');
      } finally {
        clearInterval(watch);
      }
      await expectNothingLeft(out('e').key);
    });
  },
);

describe('local composed writes (copy_file_range)', () => {
  const tmp = tempDir('compose-');
  const settings = () => resolveStorageSettings({ kind: 'local', localRoot: tmp.dir });
  const src = { container: 'c', key: 'seg/vectors.knnvec' };
  const out = (name: string) => ({ container: 'c', key: `seg/${name}.faiss` });
  const file = (key: string) => path.join(tmp.dir, 'c', key);
  afterAll(() => tmp.remove());

  async function readSource(store: LocalObjectStore) {
    await mkdir(path.dirname(file(src.key)), { recursive: true });
    await writeFile(file(src.key), source);
    return (await store.read(src)).version!;
  }

  async function expectNothingLeft(name: string) {
    const names = await readdir(path.dirname(file(out(name).key)));
    expect(names.filter((n) => n.startsWith(`${name}.faiss`))).toEqual([]);
  }

  it.skipIf(!new LocalObjectStore(settings()).copierAvailable)(
    'copies the range in the kernel (needs the addon) and writes only the rest',
    async () => {
      const store = new LocalObjectStore(settings());
      const version = await readSource(store);
      const result = await store.writeComposed(out('a'), composed(src, version));
      expect(result).toMatchObject({ path: 'copy', bytesCopied: source.length, bytes: expected.length });
      expect(result.bytesSent).toBe(before.length + after.length);
      expect((await readFile(file(out('a').key))).equals(expected)).toBe(true);
    },
  );

  it('copies in several threads over chunks that do not line up with the range (byte-exact)', async () => {
    const store = new LocalObjectStore(settings(), nativeRangeCopier({ threads: 3, chunkBytes: MiB + 7 }));
    const version = await readSource(store);
    const result = await store.writeComposed(out('f'), composed(src, version));
    expect(result).toMatchObject({ path: 'copy', bytesCopied: source.length, bytes: expected.length });
    expect((await readFile(file(out('f').key))).equals(expected)).toBe(true);
  });

  it('copies with pread + pwrite where copy_file_range is refused (forced), and says so', async () => {
    const copier = nativeRangeCopier({ copyFileRange: false, threads: 2, chunkBytes: MiB + 3 });
    const store = new LocalObjectStore(settings(), copier);
    const version = await readSource(store);
    const result = await store.writeComposed(out('g'), composed(src, version));
    expect(result.path).toBe('stream');
    expect(result.reason).toBe(
      'copy_file_range was turned off (a test option): the range was copied with pread + pwrite',
    );
    expect(result.bytesSent).toBe(expected.length);
    expect((await readFile(file(out('g').key))).equals(expected)).toBe(true);
  });

  it('a cancel in the middle of the threaded copy leaves no file', async () => {
    // 256-byte pieces: the copy takes long enough that its first progress report (~50 ms) comes mid-copy.
    const store = new LocalObjectStore(
      settings(),
      nativeRangeCopier({ copyFileRange: false, chunkBytes: 256 }),
    );
    const version = await readSource(store);
    const controller = new AbortController();
    let mid = false;
    const onProgress = (bytes: number) => {
      if (bytes > before.length && bytes < before.length + source.length) {
        mid = true;
        controller.abort(new Error('cancelled by the test'));
      }
    };
    const err = await failure(
      store.writeComposed(out('h'), composed(src, version), { signal: controller.signal, onProgress }),
    );
    expect(mid).toBe(true);
    expect(err.code).toBe('Aborted');
    await expectNothingLeft('h');
  });

  it('writes the range from memory when the file system refuses the copy, and says why', async () => {
    const refuse: RangeCopier = () =>
      Promise.reject(Object.assign(new Error('copy_file_range: cross-device'), { code: 'EXDEV' }));
    const store = new LocalObjectStore(settings(), refuse);
    const version = await readSource(store);
    const result = await store.writeComposed(out('b'), composed(src, version));
    expect(result.path).toBe('stream');
    expect(result.reason).toMatch(/EXDEV/);
    expect(result.bytesSent).toBe(expected.length);
    expect((await readFile(file(out('b').key))).equals(expected)).toBe(true);
  });

  it('fails with Changed when the source changed after it was read, leaving nothing', async () => {
    const store = new LocalObjectStore(settings());
    const version = await readSource(store);
    await writeFile(file(src.key), pattern(source.length, 99));
    const err = await failure(store.writeComposed(out('c'), composed(src, version)));
    expect(err.code).toBe('Changed');
    await expectNothingLeft('c');
  });

  it('fails with Changed when the source changes during the copy', async () => {
    // The source is rewritten while "copying": the check after the copy sees it.
    const changeWhileCopying: RangeCopier = async (_in, _inOff, _out, _outOff, length) => {
      await writeFile(file(src.key), pattern(source.length, 98));
      return { bytes: length, method: 'copy_file_range' };
    };
    const store = new LocalObjectStore(settings(), changeWhileCopying);
    const version = await readSource(store);
    const err = await failure(store.writeComposed(out('d'), composed(src, version)));
    expect(err.code).toBe('Changed');
    await expectNothingLeft('d');
  });

  it('a cancel in the middle of the copy leaves no file', async () => {
    const controller = new AbortController();
    const slow: RangeCopier = (_in, _inOff, _out, _outOff, length) => {
      controller.abort(new Error('cancelled by the test'));
      return Promise.resolve({ bytes: length, method: 'copy_file_range' });
    };
    const store = new LocalObjectStore(settings(), slow);
    const version = await readSource(store);
    const err = await failure(
      store.writeComposed(out('e'), composed(src, version), { signal: controller.signal }),
    );
    expect(err.code).toBe('Aborted');
    await expectNothingLeft('e');
  });
});
