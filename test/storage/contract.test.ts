// The ObjectStore contract, run against both stores: the S3 store on the real RGW test server, and the
// local-directory store. Same calls, same results, same error codes.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore, isStorageError } from '../../src/storage/index.js';
import { isTempFileName } from '../../src/storage/local.js';
import type { StorageSettings } from '../../src/storage/settings.js';
import type { ObjectStore } from '../../src/storage/types.js';
import {
  createTestBucket,
  deleteTestBucket,
  listMultipartUploads,
  listObjectKeys,
  putObject,
  s3StoreSettings,
  s3Unavailable,
  testS3Client,
} from '../helpers/s3.js';
import { failure, halfOfEachWord, halved, joined, pattern } from './fixtures.js';

const MiB = 2 ** 20;

/** Small parts and chunks, so a few MiB exercise many parts, chunk straddling and multipart uploads. */
const SMALL: Partial<StorageSettings> = {
  readPartBytes: 64 * 1024,
  readConcurrency: 8,
  writePartBytes: 5 * MiB,
  writeConcurrency: 2,
  maxChunkBytes: 100_000,
};

interface Fixture {
  readonly store: ObjectStore;
  readonly container: string;
  /** Puts bytes without going through the store. */
  put(key: string, data: Uint8Array): Promise<void>;
  keys(): Promise<string[]>;
  /** What a failed write could leave behind: multipart uploads (S3), temporary files (local). */
  leftovers(): Promise<string[]>;
  dispose(): Promise<void>;
}

async function s3Fixture(): Promise<Fixture> {
  const client: S3Client = testS3Client();
  const container = await createTestBucket(client, 'contract');
  const store = createObjectStore(s3StoreSettings(SMALL));
  return {
    store,
    container,
    put: (key, data) => putObject(client, container, key, data),
    keys: () => listObjectKeys(client, container),
    leftovers: async () => (await listMultipartUploads(client, container)).map((u) => u.key),
    dispose: async () => {
      await store.close();
      await deleteTestBucket(client, container);
      client.destroy();
    },
  };
}

async function localFixture(): Promise<Fixture> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'knn-local-store-'));
  const container = 'bucket';
  await mkdir(path.join(root, container));
  const store = createObjectStore({ kind: 'local', localRoot: root, ...SMALL });
  const files = async () =>
    (await readdir(path.join(root, container), { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => path.relative(path.join(root, container), path.join(e.parentPath, e.name)));
  return {
    store,
    container,
    put: async (key, data) => {
      await mkdir(path.dirname(path.join(root, container, key)), { recursive: true });
      await writeFile(path.join(root, container, key), data);
    },
    keys: async () => (await files()).filter((f) => !isTempFileName(path.basename(f))),
    leftovers: async () => (await files()).filter((f) => isTempFileName(path.basename(f))),
    dispose: () => rm(root, { recursive: true, force: true }),
  };
}

/** A stream of `data` in pieces of uneven sizes, the way an index writer produces it. */
function pieces(data: Buffer): Readable {
  const sizes = [1, 1000, 65_536, 3 * MiB, 7];
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - at);
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(out);
}

const stores: [string, () => Promise<Fixture>, string | undefined][] = [
  ['s3', s3Fixture, s3Unavailable()],
  ['local', localFixture, undefined],
];

describe.each(stores)('%s store', (_name, makeFixture, skipReason) => {
  let f: Fixture;
  beforeAll(async () => {
    if (!skipReason) f = await makeFixture();
  });
  afterAll(async () => {
    await f?.dispose();
  });

  describe.skipIf(skipReason !== undefined)(
    skipReason ? `contract (skipped: ${skipReason})` : 'contract',
    () => {
      it.each([0, 1, 1000, 5 * MiB + 1, 12 * MiB + 3])('round-trips %i bytes', async (size) => {
        const data = pattern(size, size);
        const key = `round-trip/${size}.bin`;
        const progress: number[] = [];
        const written = await f.store.write({ container: f.container, key }, pieces(data), {
          onProgress: (done) => progress.push(done),
        });
        expect(written.bytes).toBe(size);
        if (size > 0) expect(progress.at(-1)).toBe(size);
        expect((await f.store.head({ container: f.container, key })).size).toBe(size);
        const blob = await f.store.read({ container: f.container, key });
        expect(blob.byteLength).toBe(size);
        expect(joined(blob.chunks).equals(data)).toBe(true);
      });

      it('splits a read into chunks of whole records, with parts straddling chunk boundaries', async () => {
        const data = pattern(12 * 50_000, 7); // 12-byte records; 64 KiB parts cross 99,996-byte chunks
        await f.put('aligned.bin', data);
        const progress: [number, number][] = [];
        const sizes: number[] = [];
        const blob = await f.store.read(
          { container: f.container, key: 'aligned.bin' },
          { alignBytes: 12, checkSize: (b) => sizes.push(b), onProgress: (d, t) => progress.push([d, t]) },
        );
        expect(sizes).toEqual([data.length]);
        expect(blob.chunks.length).toBe(7);
        for (const chunk of blob.chunks) expect(chunk.length % 12).toBe(0);
        expect(blob.chunks[0]!.length).toBe(99_996);
        expect(joined(blob.chunks).equals(data)).toBe(true);
        expect(progress.at(-1)).toEqual([data.length, data.length]);
      });

      it('applies a transform while the bytes arrive (4 bytes in, 2 out)', async () => {
        const data = pattern(4 * 3 * 100_001, 9); // 3 values per record, 6 output bytes per record
        await f.put('vectors.knnvec', data);
        const blob = await f.store.read(
          { container: f.container, key: 'vectors.knnvec' },
          { transform: halfOfEachWord(), alignBytes: 6 },
        );
        expect(blob.byteLength).toBe(data.length / 2);
        for (const chunk of blob.chunks.slice(0, -1)) expect(chunk.length).toBe(99_996);
        expect(joined(blob.chunks).equals(halved(data))).toBe(true);
      });

      it('overwrites an object', async () => {
        const key = 'overwrite.bin';
        await f.store.write({ container: f.container, key }, Readable.from([pattern(100, 1)]));
        await f.store.write({ container: f.container, key }, Readable.from([pattern(50, 2)]));
        expect(joined((await f.store.read({ container: f.container, key })).chunks)).toEqual(pattern(50, 2));
      });

      it('names a missing container NoSuchBucket, for head, read and write', async () => {
        const where = { container: 'no-such-container-4f1e', key: 'x.knnvec' };
        for (const attempt of [
          () => f.store.head(where),
          () => f.store.read(where),
          () => f.store.write(where, Readable.from([Buffer.from('abc')])),
        ]) {
          const err = await failure(attempt());
          expect(err.code).toBe('NoSuchBucket');
          expect(err.message).toContain('no-such-container-4f1e');
        }
      });

      it('names a missing object NoSuchKey, with its key', async () => {
        const where = { container: f.container, key: 'missing/x.knnvec' };
        for (const attempt of [() => f.store.head(where), () => f.store.read(where)]) {
          const err = await failure(attempt());
          expect(err.code).toBe('NoSuchKey');
          expect(err.message).toContain(`${f.container}/missing/x.knnvec`);
        }
      });

      it('fails with SizeMismatch when the reader refuses the size, or not whole records', async () => {
        await f.put('sized.bin', pattern(1000));
        const where = { container: f.container, key: 'sized.bin' };
        const checkSize = (bytes: number) => {
          if (bytes !== 1200) throw new Error(`holds ${bytes} bytes, the format needs 1200`);
        };
        const progress: number[] = [];
        const wrongSize = await failure(
          f.store.read(where, { checkSize, onProgress: (d) => progress.push(d) }),
        );
        expect(wrongSize.code).toBe('SizeMismatch');
        expect(wrongSize.message).toMatch(/sized\.bin: holds 1000 bytes, the format needs 1200$/);
        expect(progress.filter((d) => d > 0)).toEqual([]); // refused before any byte was downloaded
        expect((await failure(f.store.read(where, { alignBytes: 12 }))).code).toBe('SizeMismatch');
        expect(
          (await failure(f.store.read(where, { transform: { ...halfOfEachWord(), inputUnit: 3 } }))).code,
        ).toBe('SizeMismatch');
      });

      it('leaves nothing behind when the source stream fails mid-way', async () => {
        const key = 'broken-source.bin';
        async function* broken() {
          yield pattern(6 * MiB);
          yield pattern(MiB);
          throw new Error('index writer crashed');
        }
        const err = await failure(f.store.write({ container: f.container, key }, Readable.from(broken())));
        expect(isStorageError(err)).toBe(true);
        expect(err.message).toContain('index writer crashed');
        expect(await f.keys()).not.toContain(key);
        expect(await f.leftovers()).toEqual([]);
      });

      it('cancels a write promptly and leaves nothing behind', async () => {
        const key = 'cancelled.bin';
        const source = new PassThrough();
        const controller = new AbortController();
        const writing = f.store.write({ container: f.container, key }, source, { signal: controller.signal });
        source.write(pattern(11 * MiB)); // two parts in flight or done; the producer then goes quiet
        await expect.poll(() => f.leftovers(), { timeout: 5_000 }).toHaveLength(1); // an upload / temp file is open
        const t0 = Date.now();
        controller.abort();
        const err = await failure(writing);
        expect(err.code).toBe('Aborted');
        expect(Date.now() - t0).toBeLessThan(2_000);
        expect(source.destroyed).toBe(true);
        expect(await f.keys()).not.toContain(key);
        expect(await f.leftovers()).toEqual([]);
      });

      it('cancels a read promptly', async () => {
        await f.put('big.bin', pattern(8 * MiB));
        const controller = new AbortController();
        const err = await failure(
          f.store.read(
            { container: f.container, key: 'big.bin' },
            { signal: controller.signal, onProgress: () => controller.abort() },
          ),
        );
        expect(err.code).toBe('Aborted');
        expect(err.message).toContain('cancelled');
      });
    },
  );
});

describe('local store locations', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await localFixture();
  });
  afterAll(() => f.dispose());

  it.each([
    ['bucket', '../escape'],
    ['bucket', 'a/../../escape'],
    ['bucket', '/etc/passwd'],
    ['bucket', 'a//b'],
    ['bucket', './a'],
    ['bucket', ''],
    ['..', 'x'],
    ['a/b', 'x'],
    ['.', 'x'],
  ])('rejects container %j with key %j', async (container, key) => {
    for (const attempt of [
      () => f.store.head({ container, key }),
      () => f.store.read({ container, key }),
      () => f.store.write({ container, key }, Readable.from([Buffer.from('x')])),
    ]) {
      expect((await failure(attempt())).code).toBe('InvalidLocation');
    }
  });
});
