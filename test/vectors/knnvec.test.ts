// `.knnvec` and `.knndid` parsing: zero-copy views, copies only where needed, and errors that name the numbers.
import { describe, expect, it } from 'vitest';

import type { HostBlob } from '../../src/storage/types.js';
import { VectorDataError } from '../../src/vectors/errors.js';
import { float16BitsToFloat32, halfFloatTransform } from '../../src/vectors/fp16.js';
import { checkDocIdObjectSize, parseDocIdBlob } from '../../src/vectors/knndid.js';
import {
  checkVectorObjectSize,
  knnvecReadOptions,
  parseVectorBlob,
  wholeVectorPieces,
} from '../../src/vectors/knnvec.js';

/** A blob whose chunks split `bytes` at the given lengths. */
function blob(bytes: Uint8Array, ...lengths: number[]): HostBlob {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const n of [...lengths, bytes.length - lengths.reduce((a, b) => a + b, 0)]) {
    if (n > 0) chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return { byteLength: bytes.length, chunks };
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function expectError(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VectorDataError);
    expect((e as VectorDataError).code).toBe(code);
    expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected a VectorDataError');
}

describe('parseVectorBlob', () => {
  const floats = Float32Array.from({ length: 5 * 4 }, (_, i) => i * 0.5 - 3);

  it('returns float vectors as views over the blob, without copying', () => {
    const b = blob(bytesOf(floats), 8 * 4); // two chunks of whole vectors (2 and 3 vectors)
    const set = parseVectorBlob(b, { dataType: 'float', dimension: 4, count: 5 });
    expect(set).toMatchObject({ dataType: 'float', dimension: 4, count: 5 });
    expect(set.chunks.map((c) => c.length)).toEqual([8, 12]);
    expect(set.chunks.every((c) => c instanceof Float32Array && c.buffer === floats.buffer)).toBe(true);
    expect(Array.from(set.chunks.flatMap((c) => Array.from(c)))).toEqual(Array.from(floats));
  });

  it('copies a chunk that is misaligned for float32, and vectors that straddle chunks', () => {
    const shifted = new Uint8Array(floats.byteLength + 1).subarray(1);
    shifted.set(bytesOf(floats));
    const b = blob(shifted, 20, 30); // splits inside vectors, at odd offsets
    const set = parseVectorBlob(b, { dataType: 'float', dimension: 4, count: 5 });
    const all = set.chunks.flatMap((c) => Array.from(c as Float32Array));
    expect(all).toEqual(Array.from(floats));
    expect(set.chunks.every((c) => c.length % 4 === 0)).toBe(true);
  });

  it('copies misaligned Buffer chunks too (Buffer.slice would only make another view)', () => {
    const shifted = Buffer.alloc(floats.byteLength + 2).subarray(2);
    shifted.set(bytesOf(floats));
    const set = parseVectorBlob(
      { byteLength: shifted.length, chunks: [shifted] },
      { dataType: 'float', dimension: 4, count: 5 },
    );
    expect(Array.from(set.chunks[0] as Float32Array)).toEqual(Array.from(floats));
  });

  it('keeps aligned runs as views and copies only the straddling vector', () => {
    const pieces = wholeVectorPieces([bytesOf(floats).subarray(0, 24), bytesOf(floats).subarray(24)], 16, 4);
    expect(pieces.map((p) => p.length)).toEqual([16, 16, 48]);
    expect(pieces[0]!.buffer).toBe(floats.buffer);
    expect(pieces[1]!.buffer).not.toBe(floats.buffer); // the vector split 8 + 8 bytes
    expect(pieces[2]!.buffer).toBe(floats.buffer);
  });

  it('parses half_float converted by halfFloatTransform into Uint16Array fp16 views', () => {
    const wire = Float32Array.of(1, -2, 0.1, 65504, 2 ** -24, 0, -0.5, 3);
    const fp16 = new Uint8Array(wire.length * 2);
    halfFloatTransform.apply(bytesOf(wire), fp16);
    const set = parseVectorBlob(blob(fp16), { dataType: 'half_float', dimension: 4, count: 2 });
    expect(set.chunks[0]).toBeInstanceOf(Uint16Array);
    expect(set.chunks[0]!.buffer).toBe(fp16.buffer);
    expect(Array.from(set.chunks[0] as Uint16Array, float16BitsToFloat32)).toEqual([
      1,
      -2,
      0.0999755859375,
      65504,
      2 ** -24,
      0,
      -0.5,
      3,
    ]);
  });

  it('parses byte vectors as Int8Array and binary vectors as packed Uint8Array', () => {
    const bytes = Uint8Array.of(0x80, 0x7f, 0xff, 0x00, 1, 2);
    const asInt8 = parseVectorBlob(blob(bytes), { dataType: 'byte', dimension: 3, count: 2 });
    expect(asInt8.chunks[0]).toBeInstanceOf(Int8Array);
    expect(Array.from(asInt8.chunks[0]!)).toEqual([-128, 127, -1, 0, 1, 2]);
    const asBits = parseVectorBlob(blob(bytes), { dataType: 'binary', dimension: 16, count: 3 });
    expect(asBits.chunks[0]).toBeInstanceOf(Uint8Array);
    expect(asBits.chunks[0]!.buffer).toBe(bytes.buffer);
  });

  it('reports a size mismatch with the expected bytes and what would fit', () => {
    const b = blob(new Uint8Array(4 * 6 * 5)); // 5 vectors of 6 floats
    expectError(
      () => parseVectorBlob(b, { dataType: 'float', dimension: 4, count: 5 }),
      'VECTOR_BYTES_MISMATCH',
      /holds 120 bytes, but doc_count 5 × dimension 4 \(float, 4-byte elements\) needs 80 bytes; dimension 6 would fit doc_count 5; it is not a whole number of 16-byte vectors \(8 bytes left over\)$/,
    );
    expectError(
      () => parseVectorBlob(b, { dataType: 'float', dimension: 6, count: 4 }),
      'VECTOR_BYTES_MISMATCH',
      /needs 96 bytes.*doc_count 5 would fit dimension 6/,
    );
    expectError(
      () => parseVectorBlob(blob(new Uint8Array(33)), { dataType: 'float', dimension: 2, count: 4 }),
      'VECTOR_BYTES_MISMATCH',
      /not a whole number of 8-byte vectors \(1 bytes left over\)/,
    );
  });

  it('says when a half_float blob still holds float32', () => {
    expectError(
      () => parseVectorBlob(blob(new Uint8Array(4 * 8)), { dataType: 'half_float', dimension: 4, count: 2 }),
      'VECTOR_BYTES_MISMATCH',
      /needs 16 bytes of fp16.*still holds the float32 wire form/,
    );
  });

  it('checks the object size before download in wire units', () => {
    expect(() => checkVectorObjectSize({ dataType: 'half_float', dimension: 4, count: 2 }, 32)).not.toThrow();
    expectError(
      () => checkVectorObjectSize({ dataType: 'binary', dimension: 64, count: 10 }, 70),
      'VECTOR_BYTES_MISMATCH',
      /needs 80 bytes; dimension 56 would fit doc_count 10; it is not a whole number of 8-byte vectors/,
    );
    expectError(
      () => checkVectorObjectSize({ dataType: 'binary', dimension: 64, count: 10 }, 72),
      'VECTOR_BYTES_MISMATCH',
      /needs 80 bytes; doc_count 9 would fit dimension 64$/,
    );
  });

  it('names the vector and element holding NaN or Infinity', () => {
    const values = new Float32Array(3 * 4);
    values[2 * 4 + 3] = NaN;
    expectError(
      () => parseVectorBlob(blob(bytesOf(values), 16), { dataType: 'float', dimension: 4, count: 3 }),
      'NON_FINITE_VALUE',
      /vector 2 \(0-based, doc order\) element 3 is NaN/,
    );
    values[2 * 4 + 3] = 0;
    values[5] = -Infinity;
    expectError(
      () => parseVectorBlob(blob(bytesOf(values)), { dataType: 'float', dimension: 4, count: 3 }),
      'NON_FINITE_VALUE',
      /vector 1 .* element 1 is -Infinity/,
    );
  });

  it('refuses finite floats whose squared norm overflows float32 distances, naming the row', () => {
    const values = new Float32Array(4 * 4).fill(1);
    values.set([3e38, -3e38, 1, 1], 4); // vector 1: each value finite, but its distances are inf
    expectError(
      () => parseVectorBlob(blob(bytesOf(values), 16), { dataType: 'float', dimension: 4, count: 4 }),
      'VALUE_TOO_LARGE',
      /vector 1 \(0-based, doc order\) has a squared norm of 1\.800e\+77, .*scale the vectors down/,
    );
    values.set([1e18, 1e18, 1, 1], 4); // large but safe (a squared norm of 2e36)
    values[3 * 4 + 2] = NaN; // and a NaN in a later row is still found
    expectError(
      () => parseVectorBlob(blob(bytesOf(values), 16), { dataType: 'float', dimension: 4, count: 4 }),
      'NON_FINITE_VALUE',
      /vector 3 .* element 2 is NaN/,
    );
    values[3 * 4 + 2] = 1;
    expect(
      parseVectorBlob(blob(bytesOf(values), 16), { dataType: 'float', dimension: 4, count: 4 }).count,
    ).toBe(4);
  });

  it('rejects half_float values beyond the fp16 range, and NaN', () => {
    const wire = Float32Array.of(1, 2, 3, 4, 5, -70000, 7, 8);
    const fp16 = new Uint8Array(16);
    halfFloatTransform.apply(bytesOf(wire), fp16);
    expectError(
      () => parseVectorBlob(blob(fp16), { dataType: 'half_float', dimension: 4, count: 2 }),
      'HALF_FLOAT_OUT_OF_RANGE',
      /vector 1 .* element 1 became -Infinity.*at least 65520 in magnitude \(fp16's largest finite value is 65504\)/,
    );
    wire[5] = NaN;
    halfFloatTransform.apply(bytesOf(wire), fp16);
    expectError(
      () => parseVectorBlob(blob(fp16), { dataType: 'half_float', dimension: 4, count: 2 }),
      'NON_FINITE_VALUE',
      /vector 1 .* element 1 is NaN/,
    );
  });

  it('requires a binary dimension that is a multiple of 8', () => {
    expectError(
      () => parseVectorBlob(blob(new Uint8Array(4)), { dataType: 'binary', dimension: 12, count: 2 }),
      'BINARY_DIMENSION',
      /multiple of 8.*got 12; the nearest valid dimensions are 8 and 16/,
    );
  });

  it('gives the storage layer read options that make parsing zero-copy and check the size first', () => {
    const checkSize = expect.any(Function);
    expect(knnvecReadOptions({ dataType: 'float', dimension: 8, count: 10 })).toEqual({
      alignBytes: 32,
      checkSize,
    });
    const half = knnvecReadOptions({ dataType: 'half_float', dimension: 8, count: 10 });
    expect(half).toEqual({ alignBytes: 16, checkSize, transform: halfFloatTransform });
    expect(() => half.checkSize!(320)).not.toThrow(); // the float32 wire form
    expect(() => half.checkSize!(160)).toThrow(/\.knnvec holds 160 bytes, but doc_count 10 × dimension 8/);
    const binary = knnvecReadOptions({ dataType: 'binary', dimension: 8, count: 10 });
    expect(binary.alignBytes).toBe(1);
    expect(() => binary.checkSize!(10)).not.toThrow();
    expect(() => binary.checkSize!(11)).toThrow(VectorDataError);
  });
});

describe('parseDocIdBlob', () => {
  const ids = Int32Array.of(0, 3, 4, 100, 2 ** 31 - 1);

  it('returns a view over a single aligned chunk', () => {
    const out = parseDocIdBlob(blob(bytesOf(ids)), 5);
    expect(out.buffer).toBe(ids.buffer);
    expect(Array.from(out)).toEqual(Array.from(ids));
  });

  it('joins several chunks (or a misaligned one) into one array', () => {
    expect(Array.from(parseDocIdBlob(blob(bytesOf(ids), 6, 7), 5))).toEqual(Array.from(ids));
    const shifted = new Uint8Array(21).subarray(1);
    shifted.set(bytesOf(ids));
    expect(Array.from(parseDocIdBlob(blob(shifted), 5))).toEqual(Array.from(ids));
  });

  it('names the position and values when ids are not strictly increasing', () => {
    expectError(
      () => parseDocIdBlob(blob(bytesOf(Int32Array.of(1, 5, 5, 9))), 4),
      'DOC_IDS_NOT_INCREASING',
      /position 2 holds 5 after 5 at position 1/,
    );
    expectError(
      () => parseDocIdBlob(blob(bytesOf(Int32Array.of(1, 5, 2))), 3),
      'DOC_IDS_NOT_INCREASING',
      /position 2 holds 2 after 5/,
    );
    expectError(
      () => parseDocIdBlob(blob(bytesOf(Int32Array.of(-1, 5))), 2),
      'NEGATIVE_DOC_ID',
      /position 0 is -1/,
    );
  });

  it('reports a count mismatch and stray bytes', () => {
    expectError(
      () => parseDocIdBlob(blob(bytesOf(ids)), 6),
      'DOC_ID_COUNT_MISMATCH',
      /holds 5 doc ids \(20 bytes\) but doc_count is 6 \(24 bytes expected\)/,
    );
    expectError(() => checkDocIdObjectSize(5, 22), 'DOC_ID_BYTES_MISMATCH', /5 ids and 2 stray bytes/);
  });
});
