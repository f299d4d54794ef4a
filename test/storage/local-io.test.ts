// The addon's file transfers under the local store (src/native/io, through src/storage/local-io.ts): threaded reads
// into chunked memory and parallel range copies, checked byte for byte at odd sizes and offsets, across chunk and
// target boundaries, on short files, on the pread/pwrite fallback, and on cancel (which must leave no thread
// writing). Small chunkBytes make a few hundred KiB cross many chunk boundaries.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  readFileSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { loadAddon } from '../../src/builders/native.js';
import { LocalObjectStore } from '../../src/storage/local.js';
import {
  type FileReader,
  GatheredWriter,
  MAX_CALL_BYTES,
  nativeFileReader,
  nativeRangeCopier,
} from '../../src/storage/local-io.js';
import { resolveStorageSettings } from '../../src/storage/settings.js';
import { tempDir } from '../helpers/faiss-files.js';
import { failure, halfOfEachWord, halved, joined, pattern } from './fixtures.js';

const tmp = tempDir('local-io-');
afterAll(() => tmp.remove());
const reader = nativeFileReader()!;
const copier = nativeRangeCopier()!;

/** A file holding `bytes`, opened for reading for the duration of `fn`. */
async function withFile<T>(name: string, bytes: Uint8Array, fn: (fd: number, file: string) => Promise<T>) {
  const file = path.join(tmp.dir, name);
  writeFileSync(file, bytes);
  const fd = openSync(file, 'r');
  try {
    return await fn(fd, file);
  } finally {
    closeSync(fd);
  }
}

/** Targets of these lengths (zero-length ones included), filled with 0xee so a missed byte shows. */
const targetsOf = (...lengths: number[]) => lengths.map((n) => new Uint8Array(n).fill(0xee));

/** Waits long enough for a stray thread to have written something. */
const settle = () => new Promise((r) => setTimeout(r, 150));

describe('threaded reads (readFileRange)', () => {
  const data = pattern(300_007, 3);

  it('fills targets of odd sizes from an odd offset, chunks and targets crossing each other (buffered and O_DIRECT)', async () => {
    await withFile('odd.bin', data, async (fd) => {
      for (const [threads, chunkBytes] of [
        [1, 4096],
        [3, 4099],
        [8, 1000],
        [2, 1 << 20], // one chunk for all
      ] as const) {
        for (const direct of [false, true]) {
          const targets = targetsOf(7, 0, 65_536, 1, 0, 100_000, 134_456);
          const total = targets.reduce((n, t) => n + t.length, 0);
          const offset = data.length - total - 5; // not aligned, and 5 bytes short of the end
          await reader(fd, offset, targets, { threads, chunkBytes, direct });
          expect(joined(targets).equals(data.subarray(offset, offset + total))).toBe(true);
        }
      }
    });
  });

  it('reads a whole file into one target and reports progress up to the total', async () => {
    await withFile('whole.bin', data, async (fd) => {
      const [target] = targetsOf(data.length);
      const seen: number[] = [];
      await reader(fd, 0, [target!], { chunkBytes: 4096, onProgress: (done) => seen.push(done) });
      expect(Buffer.from(target!).equals(data)).toBe(true);
      expect(seen.at(-1)).toBe(data.length);
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    });
  });

  it('reads up to the end of a file whose size is not a multiple of the O_DIRECT alignment', async () => {
    await withFile('tail.bin', data, async (fd) => {
      const [target] = targetsOf(data.length - 4095);
      await reader(fd, 4095, [target!], { direct: true, chunkBytes: 8192, threads: 2 });
      expect(Buffer.from(target!).equals(data.subarray(4095))).toBe(true);
    });
  });

  it('reads 0 bytes (no targets, empty targets, an empty file)', async () => {
    await withFile('empty.bin', new Uint8Array(0), async (fd) => {
      await reader(fd, 0, []);
      const targets = targetsOf(0, 0);
      await reader(fd, 0, targets);
      expect(targets.map((t) => t.length)).toEqual([0, 0]);
    });
  });

  it('fails clearly, reading nothing, when the file is shorter than the range', async () => {
    await withFile('short.bin', data.subarray(0, 1000), async (fd) => {
      const targets = targetsOf(600, 600);
      const err = (await reader(fd, 0, targets, { label: 'local://c/short.knnvec' }).catch(
        (e) => e,
      )) as Error & {
        code: string;
      };
      expect(err.code).toBe('ESHRANK');
      expect(err.message).toBe(
        "ESHRANK: the file is shorter than expected (1000 bytes; bytes 0 to 1200 were asked for), pread 'local://c/short.knnvec'",
      );
      expect(targets.every((t) => t.every((b) => b === 0xee))).toBe(true);
    });
  });

  it("names the file and the errno in a system error (a directory's fd: EISDIR)", async () => {
    const fd = openSync(tmp.dir, 'r');
    try {
      const err = (await reader(fd, 0, targetsOf(10), { label: 'local://c/dir' }).catch(
        (e) => e,
      )) as Error & {
        code: string;
      };
      expect(err.code).toBe('EISDIR');
      expect(err.message).toBe("EISDIR: Is a directory at byte 0, pread 'local://c/dir'");
    } finally {
      closeSync(fd);
    }
  });

  it('a cancel mid-read rejects only after every thread has stopped writing into the targets', async () => {
    const big = pattern(24 << 20, 5);
    await withFile('big.bin', big, async (fd) => {
      const controller = new AbortController();
      const [target] = targetsOf(big.length);
      let reports = 0;
      // 64-byte reads on one thread (seconds in all): the first progress report (~50 ms) comes mid-read.
      const err = (await reader(fd, 0, [target!], {
        threads: 1,
        chunkBytes: 64,
        signal: controller.signal,
        onProgress: () => {
          reports++;
          controller.abort();
        },
      }).catch((e) => e)) as Error & { code: string };
      expect(reports).toBeGreaterThan(0);
      expect(err.code).toBe('ABORT_ERR');
      expect(target![target!.length - 1]).toBe(0xee); // stopped before the end (one thread reads in order)
      const snapshot = Buffer.from(target!);
      await settle();
      expect(Buffer.from(target!).equals(snapshot)).toBe(true);
    });
  });

  it('refuses an already aborted signal without starting', async () => {
    await withFile('aborted.bin', data, async (fd) => {
      const targets = targetsOf(100);
      await expect(reader(fd, 0, targets, { signal: AbortSignal.abort() })).rejects.toThrow();
      expect(targets[0]!.every((b) => b === 0xee)).toBe(true);
    });
  });

  it('checks its arguments (a bad target or option is a TypeError/RangeError, not a crash)', () => {
    const addon = loadAddon();
    expect(() => addon.readFileRange(0, 0, [new Float32Array(2) as unknown as Uint8Array])).toThrow(
      TypeError,
    );
    expect(() => addon.readFileRange(0, -1, [])).toThrow(RangeError);
    expect(() => addon.readFileRange(0, 0, [], { threads: 0 })).toThrow(RangeError);
    expect(() =>
      addon.readFileRange(0, 0, [], { cancel: new Int8Array(1) as unknown as Int32Array }),
    ).toThrow(TypeError);
  });
});

describe('parallel range copies (copyFileRange)', () => {
  const data = pattern(1_000_003, 9);

  /** Copies [srcOffset, +length) of `data` to dstOffset of a file that already holds `head`; returns the result. */
  async function copyInto(
    name: string,
    head: Uint8Array,
    srcOffset: number,
    length: number,
    options: Parameters<typeof copier>[5] = {},
  ) {
    return withFile(`${name}.src`, data, async (src) => {
      const target = path.join(tmp.dir, `${name}.dst`);
      writeFileSync(target, head);
      const dst = openSync(target, 'r+');
      try {
        const result = await copier(src, srcOffset, dst, head.length, length, options);
        const written = readFileSync(target);
        expect(written.subarray(0, head.length).equals(head)).toBe(true);
        expect(written.subarray(head.length).equals(data.subarray(srcOffset, srcOffset + length))).toBe(true);
        return result;
      } finally {
        closeSync(dst);
      }
    });
  }

  it('copies byte for byte at odd offsets, chunks crossing the range in several threads (copy_file_range)', async () => {
    const result = await copyInto('odd', pattern(12_345, 1), 777, 900_001, {
      threads: 4,
      chunkBytes: 65_537,
    });
    expect(result).toEqual({ bytes: 900_001, method: 'copy_file_range' });
  });

  it('tries a reflink where offsets and length are block-aligned, else copies (ext4 has none)', async () => {
    const result = await copyInto('aligned', new Uint8Array(8192), 4096, 4096 * 200, { chunkBytes: 1 << 16 });
    expect(['reflink', 'copy_file_range']).toContain(result.method);
  });

  it('copies with pread + pwrite where copy_file_range is refused (forced), saying why', async () => {
    const result = await copyInto('fallback', pattern(3, 2), 1, 999_999, {
      copyFileRange: false,
      reflink: false,
      threads: 3,
      chunkBytes: 10_007,
    });
    expect(result).toEqual({
      bytes: 999_999,
      method: 'pread/pwrite',
      reason: 'copy_file_range was turned off (a test option)',
    });
  });

  it('copies 0 bytes', async () => {
    const result = await copyInto('zero', pattern(10, 4), 5, 0);
    expect(result.bytes).toBe(0);
  });

  it('fails (ESHRANK) when the source is shorter than the range', async () => {
    const err = (await withFile('short.src', data.subarray(0, 100), async (src) => {
      const dst = openSync(path.join(tmp.dir, 'short.dst'), 'w');
      try {
        return await copier(src, 50, dst, 0, 100, { label: 'local://c/v.knnvec' }).catch((e) => e);
      } finally {
        closeSync(dst);
      }
    })) as Error & { code: string };
    expect(err.code).toBe('ESHRANK');
    expect(err.message).toMatch(/^ESHRANK: the file is shorter than expected .*'local:\/\/c\/v\.knnvec'$/);
  });

  it('a cancel mid-copy rejects only after every thread has stopped writing', async () => {
    const big = pattern(16 << 20, 6);
    await withFile('cancel.src', big, async (src) => {
      const target = path.join(tmp.dir, 'cancel.dst');
      const dst = openSync(target, 'w+');
      writeSync(dst, new Uint8Array(0));
      const controller = new AbortController();
      try {
        const err = (await copier(src, 0, dst, 0, big.length, {
          threads: 2,
          chunkBytes: 128,
          copyFileRange: false, // pread + pwrite of 128 bytes (seconds in all): mid-copy at the first report
          signal: controller.signal,
          onProgress: () => controller.abort(),
        }).catch((e) => e)) as Error & { code: string };
        expect(err.code).toBe('ABORT_ERR');
        const snapshot = readFileSync(target);
        expect(snapshot.length).toBeLessThan(big.length);
        await settle();
        expect(readFileSync(target).equals(snapshot)).toBe(true);
      } finally {
        closeSync(dst);
      }
    });
  });
});

describe('LocalObjectStore.read through the addon', () => {
  const root = path.join(tmp.dir, 'store');
  const at = (key: string) => ({ container: 'c', key });
  const put = (key: string, bytes: Uint8Array) => {
    mkdirSync(path.join(root, 'c'), { recursive: true });
    writeFileSync(path.join(root, 'c', key), bytes);
  };
  const settings = resolveStorageSettings({
    kind: 'local',
    localRoot: root,
    maxChunkBytes: 3 * 2 ** 20 + 12,
  });
  const threaded = new LocalObjectStore(
    settings,
    undefined,
    nativeFileReader({ threads: 3, chunkBytes: 65_537 }),
  );
  const plain = new LocalObjectStore(settings, undefined, null);

  it('reads the same bytes as Node fs reads, in several chunks, plain and transformed (two staging buffers)', async () => {
    // More than two 64 MiB staging buffers, so the transformed read alternates between them.
    const data = randomBytes(2 * 64 * 2 ** 20 + 4000);
    put('v.knnvec', data);
    for (const store of [threaded, plain]) {
      const blob = await store.read(at('v.knnvec'), { alignBytes: 12 });
      expect(blob.chunks.length).toBeGreaterThan(1);
      expect(joined(blob.chunks).equals(data)).toBe(true);
      const half = await store.read(at('v.knnvec'), { transform: halfOfEachWord(), alignBytes: 6 });
      expect(joined(half.chunks).equals(halved(data))).toBe(true);
    }
  });

  it('fails with Corrupt, naming the object and not the server path, when the file shrinks while being read', async () => {
    put('s.knnvec', randomBytes(1 << 20));
    const shrinking: FileReader = (fd, offset, targets, options) => {
      truncateSync(path.join(root, 'c', 's.knnvec'), 1000); // after the store's fstat, before the reads
      return reader(fd, offset, targets, options);
    };
    const store = new LocalObjectStore(settings, undefined, shrinking);
    const err = await failure(store.read(at('s.knnvec')));
    expect(err.code).toBe('Corrupt');
    expect(err.message).toMatch(
      /^reading local:\/\/c\/s\.knnvec failed: the file is shorter than expected .*\(ESHRANK\)$/,
    );
    expect(err.message).not.toContain(root);
  });

  it('is cancelled (Aborted) by the signal, through the addon', async () => {
    put('c.knnvec', randomBytes(8 * 2 ** 20));
    const controller = new AbortController();
    controller.abort();
    const err = await failure(threaded.read(at('c.knnvec'), { signal: controller.signal }));
    expect(err.code).toBe('Aborted');
  });
});

describe('GatheredWriter', () => {
  // A stream can hand over a piece of 2 GiB (two 1 GiB chunks joined); Node reports such a writev as -2^31 bytes,
  // and the writer once took that at its word and wrote on at "position -2^31" until the disk was full.
  it('writes a piece of 2 GiB and more in calls the kernel and Node count right', async () => {
    const file = path.join(tmp.dir, 'big.bin');
    const big = new Uint8Array(2 ** 31 + 4096);
    big[0] = 1;
    big[MAX_CALL_BYTES] = 2;
    big[big.length - 1] = 3;
    const handle = await open(file, 'w');
    try {
      const writer = new GatheredWriter(handle, 0);
      await writer.add(new Uint8Array([9, 9]));
      await writer.add(big);
      await writer.flush();
      expect(writer.position).toBe(2 + big.length);
    } finally {
      await handle.close();
    }
    expect(statSync(file).size).toBe(2 + big.length);
    const fd = openSync(file, 'r');
    const at = (position: number) => {
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, position);
      return b[0];
    };
    try {
      expect([at(0), at(2), at(2 + MAX_CALL_BYTES), at(1 + big.length)]).toEqual([9, 1, 2, 3]);
    } finally {
      closeSync(fd);
    }
  }, 120_000);
});
