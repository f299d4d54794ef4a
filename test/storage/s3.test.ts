// What only the S3 store does: SSE-KMS key reuse, the checksums each mode sends, consistency of a read while
// the object is replaced, and close() stopping transfers. On the real RGW test server (through a recording proxy).
import zlib from 'node:zlib';
import { PassThrough, Readable } from 'node:stream';
import { CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { crc32ToBase64 } from '../../src/storage/crc32.js';
import { createObjectStore } from '../../src/storage/index.js';
import type { StorageSettings } from '../../src/storage/settings.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { FaultProxy, on } from '../helpers/fault-proxy.js';
import {
  createTestBucket,
  deleteTestBucket,
  getObject,
  listMultipartUploads,
  putObject,
  s3StoreSettings,
  s3TestServer,
  s3Unavailable,
  testS3Client,
} from '../helpers/s3.js';
import { failure, joined, pattern } from './fixtures.js';

const MiB = 2 ** 20;

const skipped = s3Unavailable(); // says why in the suite's name when skipped
describe.skipIf(skipped !== undefined)(skipped ? `S3 store (skipped: ${skipped})` : 'S3 store', () => {
  let proxy: FaultProxy;
  let client: S3Client;
  let bucket: string;
  const stores: ObjectStore[] = [];

  function makeStore(overrides: Partial<StorageSettings> = {}): ObjectStore {
    const store = createObjectStore(
      s3StoreSettings({
        endpoint: proxy.endpoint,
        readPartBytes: 256 * 1024,
        writePartBytes: 5 * MiB,
        idleTimeoutMs: 1_000,
        ...overrides,
      }),
    );
    stores.push(store);
    return store;
  }

  beforeAll(async () => {
    proxy = await FaultProxy.start(s3TestServer().endpoint);
    client = testS3Client();
    bucket = await createTestBucket(client, 's3store');
  });
  afterEach(() => proxy.clear());
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await proxy?.close();
    if (bucket) await deleteTestBucket(client, bucket);
    client?.destroy();
  });

  describe('SSE-KMS', () => {
    it.each([
      ['a single PUT', 3 * MiB],
      ['a multipart upload', 11 * MiB],
    ])('writes next to an encrypted object with its KMS key (%s)', async (_name, size) => {
      const kmsKey = s3TestServer().kmsKeyIds[1]!;
      const source = { container: bucket, key: `kms/${size}/vectors.knnvec` };
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: source.key,
          Body: pattern(4096),
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: kmsKey,
        }),
      );
      const store = makeStore();
      const info = await store.head(source);
      const read = await store.read(source);
      // The version a read reports (the ETag) is the one HEAD gives: a copy started from HEAD copies these bytes.
      expect(info).toEqual({ size: 4096, kmsKeyId: kmsKey, version: read.version });
      expect(joined(read.chunks).equals(pattern(4096))).toBe(true);

      const target = { container: bucket, key: `kms/${size}/vectors.faiss` };
      const payload = pattern(size, 3);
      await store.write(target, Readable.from([payload]), { encryptLike: info });
      const written = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: target.key }));
      expect(written.ServerSideEncryption).toBe('aws:kms');
      expect(written.SSEKMSKeyId).toBe(kmsKey);
      expect((await getObject(client, bucket, target.key)).equals(payload)).toBe(true);
    });

    it('reports no KMS key for an object without one', async () => {
      await putObject(client, bucket, 'plain.bin', pattern(10));
      expect(await makeStore().head({ container: bucket, key: 'plain.bin' })).toEqual({
        size: 10,
        version: expect.stringMatching(/^"[0-9a-f]{32}"$/),
      });
    });
  });

  describe('checksums', () => {
    const payload = pattern(11 * MiB + 1, 5);

    it("'md5' sends Content-MD5 with every part and no flexible checksum", async () => {
      await makeStore({ checksums: 'md5' }).write(
        { container: bucket, key: 'md5.bin' },
        Readable.from([payload]),
      );
      const parts = proxy.log.filter(on.uploadPart());
      expect(parts).toHaveLength(3);
      for (const part of parts) {
        expect(part.headers['content-md5']).toMatch(/^[A-Za-z0-9+/]{22}==$/);
        expect(Object.keys(part.headers).filter((h) => h.startsWith('x-amz-checksum'))).toEqual([]);
      }
      expect((await getObject(client, bucket, 'md5.bin')).equals(payload)).toBe(true);
    });

    it("'crc32' sends part CRC32s and the whole object's CRC32, never aws-chunked bodies", async () => {
      await makeStore({ checksums: 'crc32' }).write(
        { container: bucket, key: 'crc.bin' },
        Readable.from([payload]),
      );
      const create = proxy.log.find((r) => r.method === 'POST' && r.url.includes('?uploads'))!;
      expect(create.headers['x-amz-checksum-algorithm']).toBe('CRC32');
      expect(create.headers['x-amz-checksum-type']).toBe('FULL_OBJECT');
      const parts = proxy.log.filter(on.uploadPart());
      expect(parts.map((p) => p.headers['x-amz-checksum-crc32'])).toEqual([
        crc32ToBase64(zlib.crc32(payload.subarray(0, 5 * MiB))),
        crc32ToBase64(zlib.crc32(payload.subarray(5 * MiB, 10 * MiB))),
        crc32ToBase64(zlib.crc32(payload.subarray(10 * MiB))),
      ]);
      for (const part of parts) expect(part.headers['content-encoding'] ?? '').not.toContain('aws-chunked');
      const complete = proxy.log.find(on.complete())!;
      expect(complete.headers['x-amz-checksum-crc32']).toBe(crc32ToBase64(zlib.crc32(payload)));
      expect((await getObject(client, bucket, 'crc.bin')).equals(payload)).toBe(true);
    });

    it("'auto' means md5 with a custom endpoint", async () => {
      await makeStore({ checksums: 'auto' }).write(
        { container: bucket, key: 'auto.bin' },
        Readable.from([payload]),
      );
      expect(proxy.log.filter(on.uploadPart()).every((p) => p.headers['content-md5'])).toBe(true);
    });

    it('a single PUT carries the checksum too', async () => {
      await makeStore({ checksums: 'crc32' }).write(
        { container: bucket, key: 'one.bin' },
        Readable.from(['abc']),
      );
      expect(proxy.log.find(on.put())!.headers['x-amz-checksum-crc32']).toBe(
        crc32ToBase64(zlib.crc32('abc')),
      );
    });
  });

  it('names wrong credentials AccessDenied, without printing them', async () => {
    await putObject(client, bucket, 'secret.bin', pattern(10));
    const credentials = { accessKeyId: s3TestServer().accessKeyId, secretAccessKey: 'wrong-secret-3f9a' };
    const store = makeStore({ credentials });
    for (const attempt of [
      () => store.head({ container: bucket, key: 'secret.bin' }),
      () => store.read({ container: bucket, key: 'secret.bin' }),
      () => store.write({ container: bucket, key: 'new.bin' }, Readable.from(['x'])),
    ]) {
      const err = await failure(attempt());
      expect(err.code).toBe('AccessDenied');
      expect(err.message).toContain(`s3://${bucket}/`);
      expect(JSON.stringify({ ...err, message: err.message, cause: String(err.cause) })).not.toContain(
        'wrong-secret',
      );
    }
  });

  it('fails with Changed when the object is replaced in the middle of a read', async () => {
    const key = 'replaced.knnvec';
    await putObject(client, bucket, key, pattern(2 * MiB, 1));
    proxy.inject(on.rangedGet(), { kind: 'stall', afterBytes: 1000 }); // holds one range while we replace it
    const reading = failure(makeStore({ readConcurrency: 1 }).read({ container: bucket, key }));
    await expect.poll(() => proxy.pendingFaults, { timeout: 5_000 }).toBe(0);
    await putObject(client, bucket, key, pattern(2 * MiB, 2));
    const err = await reading;
    expect(err.code).toBe('Changed');
    expect(err.message).toContain(`s3://${bucket}/${key}`);
  });

  it('a cancel while CreateMultipartUpload is in flight still aborts the upload the server opened', async () => {
    // The server opens the upload at once but its answer comes late: a client that gave up on the request would
    // never learn the upload id, and the upload would stay open.
    proxy.inject((r) => r.method === 'POST' && r.url.includes('?uploads'), {
      kind: 'delay-response',
      ms: 800,
    });
    const controller = new AbortController();
    const writing = failure(
      makeStore().write(
        { container: bucket, key: 'cancel-create.faiss' },
        Readable.from([pattern(11 * MiB)]),
        { signal: controller.signal },
      ),
    );
    await expect.poll(() => listMultipartUploads(client, bucket), { timeout: 5_000 }).toHaveLength(1);
    controller.abort(new Error('cancelled by the test'));
    expect((await writing).code).toBe('Aborted');
    expect(await listMultipartUploads(client, bucket)).toEqual([]);
  });

  it('abortUpload aborts an upload another process opened, and tells of uploads as they open and close', async () => {
    const events: string[] = [];
    const key = 'told.faiss';
    await makeStore().write({ container: bucket, key }, Readable.from([pattern(11 * MiB)]), {
      onMultipart: (e) => events.push(`${e.state} ${e.location.key} ${e.uploadId.length > 0}`),
    });
    expect(events).toEqual([`open ${key} true`, `closed ${key} true`]);
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'left.faiss' }),
    );
    expect(await listMultipartUploads(client, bucket)).toHaveLength(1);
    await makeStore().abortUpload!({ container: bucket, key: 'left.faiss' }, UploadId!);
    expect(await listMultipartUploads(client, bucket)).toEqual([]);
  });

  it('close() during a multipart write aborts the upload before it resolves', async () => {
    const store = makeStore();
    const source = new PassThrough();
    const writing = failure(store.write({ container: bucket, key: 'closing.faiss' }, source));
    source.write(pattern(11 * MiB));
    await expect.poll(() => listMultipartUploads(client, bucket), { timeout: 5_000 }).toHaveLength(1);
    await store.close();
    expect((await writing).code).toBe('Aborted');
    expect(await listMultipartUploads(client, bucket)).toEqual([]);
  });

  it('close() stops transfers still running', async () => {
    await putObject(client, bucket, 'closing.bin', pattern(MiB));
    proxy.inject(on.rangedGet(), { kind: 'hang' }, Infinity);
    const store = makeStore({ idleTimeoutMs: 60_000 });
    const reading = failure(store.read({ container: bucket, key: 'closing.bin' }));
    await expect.poll(() => proxy.log.filter((r) => r.method === 'GET').length).toBeGreaterThan(0);
    const t0 = Date.now();
    await store.close();
    expect((await reading).code).toBe('Aborted');
    expect(Date.now() - t0).toBeLessThan(1_000);
  });
});
