// The S3 store through a fault-injecting proxy in front of the RGW test server: every fault either recovers
// with the right bytes, or fails with a clear StorageError in bounded time. None yields wrong data or hangs.
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { crc32ToBase64 } from '../../src/storage/crc32.js';
import { createObjectStore } from '../../src/storage/index.js';
import type { StorageErrorCode } from '../../src/storage/index.js';
import type { StorageSettings } from '../../src/storage/settings.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { FaultProxy, on } from '../helpers/fault-proxy.js';
import type { Fault } from '../helpers/fault-proxy.js';
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
import { failure, halfOfEachWord, halved, joined, pattern } from './fixtures.js';

const MiB = 2 ** 20;
const PART = 64 * 1024;
const IDLE_MS = 800;

/** Small parts and a short idle timeout, so faults hit mid-transfer and stalls cost under a second. */
const FAST: Partial<StorageSettings> = {
  readPartBytes: PART,
  readConcurrency: 4,
  writePartBytes: 5 * MiB,
  writeConcurrency: 2,
  maxAttempts: 4,
  retryBaseDelayMs: 5,
  idleTimeoutMs: IDLE_MS,
  connectTimeoutMs: 1_000,
};

const skipped = s3Unavailable(); // says why in the suite's name when skipped
describe.skipIf(skipped !== undefined)(
  skipped ? `S3 store under faults (skipped: ${skipped})` : 'S3 store under faults',
  () => {
    let proxy: FaultProxy;
    let client: S3Client;
    let bucket: string;
    let store: ObjectStore;
    const data = pattern(MiB + 5, 42); // 17 ranged GETs of 64 KiB
    const key = 'faults/object.knnvec';
    const stores: ObjectStore[] = [];

    function makeStore(overrides: Partial<StorageSettings> = {}): ObjectStore {
      const made = createObjectStore(s3StoreSettings({ ...FAST, endpoint: proxy.endpoint, ...overrides }));
      stores.push(made);
      return made;
    }

    beforeAll(async () => {
      proxy = await FaultProxy.start(s3TestServer().endpoint);
      client = testS3Client();
      bucket = await createTestBucket(client, 'faults');
      await putObject(client, bucket, key, data);
      store = makeStore();
    });
    afterEach(() => proxy.clear());
    afterAll(async () => {
      await Promise.all(stores.map((s) => s.close()));
      await proxy?.close();
      if (bucket) await deleteTestBucket(client, bucket);
      client?.destroy();
    });

    const read = (s = store) => s.read({ container: bucket, key });

    describe('reads recover with the right bytes', () => {
      const cases: [string, Fault, number][] = [
        ['500 InternalError', { kind: 'status', status: 500, code: 'InternalError' }, 2],
        ['503 SlowDown', { kind: 'status', status: 503, code: 'SlowDown' }, 3],
        ['a reset in the middle of a body', { kind: 'reset', afterBytes: 30_000 }, 2],
        ['a truncated body', { kind: 'truncate', afterBytes: 30_000 }, 2],
        ['a body that stalls', { kind: 'stall', afterBytes: 30_000 }, 1],
        ['a request never answered', { kind: 'hang' }, 1],
      ];
      it.each(cases)('%s', async (_name, fault, times) => {
        proxy.inject(on.rangedGet(), fault, times);
        const blob = await read();
        expect(proxy.pendingFaults).toBe(0); // every fault was really served
        expect(joined(blob.chunks).equals(data)).toBe(true);
      });

      it('resumes a broken range where it stopped instead of starting over', async () => {
        proxy.inject(on.rangedGet(), { kind: 'truncate', afterBytes: 40_000 });
        const blob = await read();
        expect(joined(blob.chunks).equals(data)).toBe(true);
        const starts = proxy.log
          .filter((r) => r.method === 'GET')
          .map((r) => Number(/bytes=(\d+)-/.exec(r.headers.range!)![1]));
        const resumed = starts.filter((s) => s % PART !== 0);
        expect(resumed).toHaveLength(1);
        expect(resumed[0]! % PART).toBeGreaterThan(0);
      });

      it('resumes a transformed read cut in the middle of a value', async () => {
        const values = pattern(4 * 100_000, 3);
        await putObject(client, bucket, 'faults/values.knnvec', values);
        proxy.inject(on.rangedGet(), { kind: 'reset', afterBytes: 30_001 }, 2);
        const blob = await store.read(
          { container: bucket, key: 'faults/values.knnvec' },
          { transform: halfOfEachWord(), alignBytes: 2 },
        );
        expect(proxy.pendingFaults).toBe(0);
        expect(joined(blob.chunks).equals(halved(values))).toBe(true);
      });

      it('recovers from a failed HEAD', async () => {
        proxy.inject(on.head(), { kind: 'status', status: 503, code: 'SlowDown' });
        expect(joined((await read()).chunks).equals(data)).toBe(true);
      });

      it('asks every range for the ETag it saw in HEAD', async () => {
        await read();
        const gets = proxy.log.filter((r) => r.method === 'GET');
        expect(gets.length).toBe(17);
        expect(new Set(gets.map((r) => r.headers['if-match'])).size).toBe(1);
        expect(gets[0]!.headers['if-match']).toMatch(/^"/);
      });
    });

    describe('persistent faults fail clearly and in bounded time', () => {
      const cases: [string, Fault, StorageErrorCode, RegExp][] = [
        [
          '500 on every GET',
          { kind: 'status', status: 500, code: 'InternalError' },
          'ServerError',
          /HTTP 500/,
        ],
        [
          'SlowDown on every GET',
          { kind: 'status', status: 503, code: 'SlowDown' },
          'Throttled',
          /slow down/,
        ],
        [
          'every body cut short',
          { kind: 'truncate', afterBytes: 1000 },
          'Unreachable',
          /connection broke after/,
        ],
        ['every body stalled', { kind: 'stall', afterBytes: 1000 }, 'Timeout', /no data|idle timeout/],
        [
          'every connection reset',
          { kind: 'reset', afterBytes: 1000 },
          'Unreachable',
          /connection broke after/,
        ],
      ];
      it.each(cases)('%s', async (_name, fault, code, message) => {
        proxy.inject(on.rangedGet(), fault, Infinity);
        const t0 = Date.now();
        const err = await failure(read(makeStore({ maxAttempts: 3 })));
        expect(err.code).toBe(code);
        expect(err.message).toMatch(message);
        expect(err.message).toContain(`s3://${bucket}/${key}`);
        expect(err.message).toContain('after 3 attempts');
        expect(Date.now() - t0).toBeLessThan(3 * IDLE_MS + 3_000);
      });

      it('a HEAD that never answers times out', async () => {
        proxy.inject(on.head(), { kind: 'hang' }, Infinity);
        const err = await failure(read(makeStore({ maxAttempts: 2 })));
        expect(err.code).toBe('Timeout');
      });

      it('an endpoint nobody listens on is Unreachable', async () => {
        const dead = await FaultProxy.start(s3TestServer().endpoint);
        const endpoint = dead.endpoint;
        await dead.close();
        const err = await failure(read(makeStore({ endpoint, maxAttempts: 2 })));
        expect(err.code).toBe('Unreachable');
        expect(err.message).toContain(endpoint);
        expect(err.message).not.toContain(s3TestServer().secretAccessKey);
      });
    });

    describe('whole-object CRC32 (checksums: crc32)', () => {
      // RGW 16 keeps no checksums, so the proxy adds the ones AWS S3 would send with HEAD.
      const crcHeaders = (value: string) => ({
        kind: 'headers' as const,
        set: { 'x-amz-checksum-crc32': value, 'x-amz-checksum-type': 'FULL_OBJECT' },
      });

      it('accepts bytes that match the checksum', async () => {
        proxy.inject(on.head(), crcHeaders(crc32ToBase64(zlib.crc32(data))));
        const blob = await read(makeStore({ checksums: 'crc32' }));
        expect(joined(blob.chunks).equals(data)).toBe(true);
        expect(proxy.log.find((r) => r.method === 'HEAD')!.headers['x-amz-checksum-mode']).toBe('ENABLED');
      });

      it('never returns bytes damaged on the way', async () => {
        proxy.inject(on.head(), crcHeaders(crc32ToBase64(zlib.crc32(data))));
        proxy.inject(on.rangedGet(), { kind: 'corrupt', atByte: 12_345 });
        const err = await failure(read(makeStore({ checksums: 'crc32' })));
        expect(proxy.pendingFaults).toBe(0);
        expect(err.code).toBe('Corrupt');
        expect(err.message).toMatch(/CRC32/);
      });

      it('ignores a composite (per-part) checksum it cannot check', async () => {
        proxy.inject(on.head(), {
          kind: 'headers',
          set: { 'x-amz-checksum-crc32': 'AAAAAA==-3', 'x-amz-checksum-type': 'COMPOSITE' },
        });
        expect(joined((await read(makeStore({ checksums: 'crc32' }))).chunks).equals(data)).toBe(true);
      });
    });

    describe('writes', () => {
      const payload = pattern(11 * MiB + 3, 7); // parts of 5, 5 and 1 MiB
      let n = 0;

      async function writeThrough(s: ObjectStore = store): Promise<string> {
        const target = `written/${++n}.faiss`;
        await s.write({ container: bucket, key: target }, Readable.from([payload]));
        return target;
      }

      const recoverable: [string, (r: Parameters<ReturnType<typeof on.any>>[0]) => boolean, Fault][] = [
        ['SlowDown on a part', on.uploadPart(), { kind: 'status', status: 503, code: 'SlowDown' }],
        ['a reset while sending a part', on.uploadPart(), { kind: 'reset-request', afterBytes: MiB }],
        ['a part damaged on the way', on.uploadPart(), { kind: 'corrupt-request', atByte: 777 }],
        ['a part never answered', on.uploadPart(), { kind: 'hang' }],
        ['500 on complete', on.complete(), { kind: 'status', status: 500 }],
        ['a lost answer to complete', on.complete(), { kind: 'status', status: 500, afterForward: true }],
      ];
      it.each(recoverable)('recover from %s', async (_name, match, fault) => {
        proxy.inject(match, fault);
        const target = await writeThrough();
        expect(proxy.pendingFaults).toBe(0);
        expect((await getObject(client, bucket, target)).equals(payload)).toBe(true);
        expect(await listMultipartUploads(client, bucket)).toEqual([]);
      });

      it('a part that always fails aborts the upload: no object, no parts left', async () => {
        proxy.inject(on.uploadPart(), { kind: 'status', status: 500 }, Infinity);
        const err = await failure(writeThrough(makeStore({ maxAttempts: 2 })));
        expect(err.code).toBe('ServerError');
        expect(err.message).toContain(`s3://${bucket}/written/`);
        expect(proxy.log.some((r) => r.method === 'DELETE' && r.url.includes('uploadId='))).toBe(true);
        expect(await listMultipartUploads(client, bucket)).toEqual([]);
        expect(await listObjectKeys(client, bucket)).not.toContain(`written/${n}.faiss`);
      });

      it('says so when even the abort fails, naming the upload left behind', async () => {
        proxy.inject(on.uploadPart(), { kind: 'status', status: 500 }, Infinity);
        proxy.inject((r) => r.method === 'DELETE', { kind: 'status', status: 500 }, Infinity);
        const err = await failure(writeThrough(makeStore({ maxAttempts: 2 })));
        expect(err.message).toMatch(/aborting multipart upload .+ failed/);
        expect(err.message).toContain('AbortIncompleteMultipartUpload');
        proxy.clear();
        expect(await listMultipartUploads(client, bucket)).toHaveLength(1); // cleaned up by deleteTestBucket
      });
    });
  },
);
