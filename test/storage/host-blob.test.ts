// Chunked host memory and the part sink: layouts, straddling chunks, transforms, partial units, retries.
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32Combine, crc32FromBase64, crc32ToBase64 } from '../../src/storage/crc32.js';
import { isStorageError } from '../../src/storage/errors.js';
import {
  PartOverrunError,
  PartSink,
  allocateBlob,
  planLayout,
  planParts,
} from '../../src/storage/host-blob.js';
import { resolveStorageSettings } from '../../src/storage/settings.js';
import { halfOfEachWord, halved, pattern } from './fixtures.js';

const where = { location: { container: 'c', key: 'k' }, address: 'test://c/k' };

function concat(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/** Feeds `data[start, end)` to a sink in pieces of the given sizes (cycled). */
function feed(sink: PartSink, data: Uint8Array, pieceSizes: number[]): void {
  let at = sink.resumeAt;
  for (let i = 0; at < sink.end; i++) {
    const n = Math.min(pieceSizes[i % pieceSizes.length]!, sink.end - at);
    sink.write(data.subarray(at, at + n));
    at += n;
  }
}

describe('planLayout', () => {
  it('makes every chunk but the last exactly chunkBytes, a multiple of alignBytes', () => {
    const layout = planLayout(1008, { alignBytes: 12, maxChunkBytes: 100 }, where);
    expect(layout.chunkBytes).toBe(96);
    const blob = allocateBlob(layout);
    expect(blob.chunks.map((c) => c.length)).toEqual([...Array<number>(10).fill(96), 48]);
    expect(blob.byteLength).toBe(1008);
  });

  it('aligns chunks to both the record size and the transform output unit', () => {
    const transform = halfOfEachWord();
    const layout = planLayout(4 * 300, { alignBytes: 6, transform, maxChunkBytes: 100 }, where);
    expect(layout.outputBytes).toBe(600);
    expect(layout.chunkBytes).toBe(96); // lcm(6, 2) = 6 -> 96
  });

  it('rejects an object that is not a whole number of records or input units', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      throw new Error('did not throw');
    };
    const notRecords = err(() => planLayout(1001, { alignBytes: 12, maxChunkBytes: 100 }, where));
    expect(isStorageError(notRecords, 'SizeMismatch')).toBe(true);
    expect((notRecords as Error).message).toContain('test://c/k');
    const notUnits = err(() => planLayout(1002, { transform: halfOfEachWord(), maxChunkBytes: 100 }, where));
    expect(isStorageError(notUnits, 'SizeMismatch')).toBe(true);
  });

  it('rejects a record larger than the largest chunk', () => {
    expect(() => planLayout(1000, { alignBytes: 200, maxChunkBytes: 100 }, where)).toThrow(RangeError);
  });

  it('gives an empty object no chunks', () => {
    expect(allocateBlob(planLayout(0, { maxChunkBytes: 100 }, where))).toEqual({ byteLength: 0, chunks: [] });
  });
});

describe('planParts', () => {
  it('cuts ranges that are multiples of the unit and cover the object', () => {
    expect(planParts(10, 4, 1)).toEqual([
      { start: 0, end: 4 },
      { start: 4, end: 8 },
      { start: 8, end: 10 },
    ]);
    expect(planParts(24, 10, 4)).toEqual([
      { start: 0, end: 8 },
      { start: 8, end: 16 },
      { start: 16, end: 24 },
    ]);
    expect(planParts(8, 3, 4)).toEqual([
      { start: 0, end: 4 },
      { start: 4, end: 8 },
    ]);
  });
});

describe('PartSink', () => {
  it('writes parts that straddle chunks, in any order, from odd-sized pieces', () => {
    const data = pattern(10_007);
    const layout = planLayout(data.length, { maxChunkBytes: 1000 }, where);
    const blob = allocateBlob(layout);
    const parts = planParts(data.length, 777, 1).reverse();
    for (const p of parts) feed(new PartSink(layout, blob.chunks, p.start, p.end), data, [1, 13, 500, 2048]);
    expect(concat(blob.chunks).equals(data)).toBe(true);
  });

  it('applies a transform across chunk boundaries and piece boundaries inside a unit', () => {
    const input = pattern(4 * 3001);
    const transform = halfOfEachWord();
    const layout = planLayout(input.length, { transform, alignBytes: 2, maxChunkBytes: 998 }, where);
    const blob = allocateBlob(layout);
    for (const p of planParts(input.length, 1000, 4)) {
      feed(new PartSink(layout, blob.chunks, p.start, p.end, true), input, [3, 1, 7, 5, 64]);
    }
    expect(blob.chunks.every((c, i) => i === blob.chunks.length - 1 || c.length === 998)).toBe(true);
    const expected = Buffer.alloc(input.length / 2);
    transform.apply(input, expected);
    expect(concat(blob.chunks).equals(expected)).toBe(true);
  });

  it('resumes after a failed attempt without the partial unit, and its CRC covers the range once', () => {
    const input = pattern(4 * 100);
    const layout = planLayout(input.length, { transform: halfOfEachWord(), maxChunkBytes: 64 }, where);
    const blob = allocateBlob(layout);
    const sink = new PartSink(layout, blob.chunks, 0, input.length, true);
    sink.write(input.subarray(0, 9)); // two whole units and one byte of the third
    expect(sink.resumeAt).toBe(8);
    expect(sink.received).toBe(9);
    sink.restart(); // the attempt failed: the next one starts at byte 8
    feed(sink, input, [5]);
    expect(sink.complete).toBe(true);
    expect(sink.crc).toBe(zlib.crc32(input));
  });

  it('hands a transform plain Uint8Array views, even of Buffers at odd offsets', () => {
    const seen: string[] = [];
    const transform = {
      ...halfOfEachWord(),
      apply: (input: Uint8Array, output: Uint8Array) => {
        seen.push(Object.getPrototypeOf(input) === Uint8Array.prototype ? 'plain' : 'other');
        halfOfEachWord().apply(input, output);
      },
    };
    const input = Buffer.concat([Buffer.alloc(1), pattern(4 * 64)]).subarray(1); // odd byteOffset
    const layout = planLayout(input.length, { transform, maxChunkBytes: 1000 }, where);
    const blob = allocateBlob(layout);
    feed(new PartSink(layout, blob.chunks, 0, input.length), input, [6, 10]);
    expect(new Set(seen)).toEqual(new Set(['plain']));
    expect(concat(blob.chunks).equals(halved(input))).toBe(true);
  });

  it('refuses more bytes than its range holds', () => {
    const layout = planLayout(100, { maxChunkBytes: 64 }, where);
    const sink = new PartSink(layout, allocateBlob(layout).chunks, 0, 50);
    sink.write(new Uint8Array(40));
    expect(() => sink.write(new Uint8Array(11))).toThrow(PartOverrunError);
  });
});

describe('crc32', () => {
  it('combines part CRCs into the CRC of the whole', () => {
    const data = pattern(100_003);
    const cuts = [0, 1, 4096, 4097, 70_000, data.length];
    let combined = 0;
    for (let i = 1; i < cuts.length; i++) {
      const part = data.subarray(cuts[i - 1]!, cuts[i]!);
      combined = crc32Combine(combined, zlib.crc32(part), part.length);
    }
    expect(combined).toBe(zlib.crc32(data));
  });

  it('combines lengths beyond 4 GiB consistently', () => {
    const zerosCrc = (n: number) => {
      let crc = zlib.crc32(Buffer.alloc(1));
      for (let length = 1; length < n; length *= 2) crc = crc32Combine(crc, crc, length);
      return crc;
    };
    expect(zerosCrc(1024)).toBe(zlib.crc32(Buffer.alloc(1024)));
    const head = zlib.crc32('abc');
    const oneStep = crc32Combine(head, zerosCrc(2 ** 32), 2 ** 32);
    const twoSteps = crc32Combine(crc32Combine(head, zerosCrc(2 ** 31), 2 ** 31), zerosCrc(2 ** 31), 2 ** 31);
    expect(oneStep).toBe(twoSteps);
  });

  it("reads and writes S3's base64 form and ignores composite values", () => {
    const crc = zlib.crc32('hello');
    expect(crc32FromBase64(crc32ToBase64(crc))).toBe(crc);
    expect(crc32FromBase64('AAAAAA==-3')).toBeUndefined();
  });
});

describe('resolveStorageSettings', () => {
  it('fills defaults and names a setting out of bounds', () => {
    const s = resolveStorageSettings({ kind: 's3', readConcurrency: undefined });
    expect(s.readConcurrency).toBeGreaterThanOrEqual(16);
    expect(() => resolveStorageSettings({ writePartBytes: 1024 })).toThrow(/writePartBytes/);
    expect(() => resolveStorageSettings({ endpoint: 'ftp://x' })).toThrow(/http or https/);
  });

  it('never prints credentials from an endpoint URL', () => {
    expect(() => resolveStorageSettings({ endpoint: 'nope://user:secret@host' })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('secret') }),
    );
  });
});
