// fp16 conversion against numpy (IEEE round to nearest even) over a sweep of all float32 bit patterns and the
// edge cases that matter: subnormals, ties, the overflow threshold, infinities and NaN.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import {
  FP16_MAX,
  float16BitsToFloat32,
  float32BitsToFloat16Bits,
  float32ToFloat16,
  halfFloatTransform,
  nativeConvert,
} from '../../src/vectors/fp16.js';
import { tempDir, unlessPython } from '../helpers/faiss-files.js';
import { FAISS_115_PYTHON, REPO_ROOT, faissPythonAvailable, runPythonJson } from '../helpers/python.js';

const bitsOf = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;
const half = (x: number) => float32BitsToFloat16Bits(bitsOf(x));

describe('float32 -> fp16', () => {
  it('rounds to nearest, ties to even', () => {
    expect(half(1)).toBe(0x3c00);
    expect(half(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10: even mantissa wins
    expect(half(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie between 1+2^-10 (odd) and 1+2^-9 (even)
    expect(half(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(half(0.1)).toBe(0x2e66);
    expect(half(-2)).toBe(0xc000);
  });

  it('keeps the largest finite values and overflows from 65520 on', () => {
    expect(half(FP16_MAX)).toBe(0x7bff);
    expect(half(65519.996)).toBe(0x7bff);
    expect(half(65520)).toBe(0x7c00); // the tie rounds to even, which is infinity
    expect(half(-1e6)).toBe(0xfc00);
    expect(half(Infinity)).toBe(0x7c00);
    expect(half(-Infinity)).toBe(0xfc00);
  });

  it('produces subnormals and rounds tiny values to signed zero', () => {
    expect(half(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(half(2 ** -25)).toBe(0x0000); // exactly half of it: tie to even zero
    expect(half(2 ** -25 * 1.0000001)).toBe(0x0001);
    expect(half(3 * 2 ** -25)).toBe(0x0002); // 1.5 units: tie to even 2
    expect(half(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the smallest normal
    expect(half(6e-5)).toBe(1007);
    expect(half(-0)).toBe(0x8000);
    expect(half(1e-30)).toBe(0);
    expect(half(-1e-30)).toBe(0x8000);
  });

  it('keeps NaN a NaN with its sign', () => {
    const nan = half(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
    expect(float32BitsToFloat16Bits(0xffc00001) & 0x8000).toBe(0x8000);
    expect(Number.isNaN(float16BitsToFloat32(nan))).toBe(true);
  });

  it('round-trips every finite fp16 value exactly', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) !== 0x7c00 && half(float16BitsToFloat32(h)) !== h) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('converts whole arrays and rejects mismatched lengths', () => {
    const out = float32ToFloat16(Float32Array.of(1, -2, 0.5), new Uint16Array(3));
    expect(Array.from(out)).toEqual([0x3c00, 0xc000, 0x3800]);
    expect(() => float32ToFloat16(new Float32Array(2), new Uint16Array(3))).toThrow(
      /holds 3 values but the input has 2/,
    );
  });
});

describe('halfFloatTransform', () => {
  it('converts 4 bytes of float32 into 2 bytes of fp16, also at odd offsets', () => {
    expect(halfFloatTransform.inputUnit).toBe(4);
    expect(halfFloatTransform.outputUnit).toBe(2);
    const values = Float32Array.of(1, 65504, -0.1, 2 ** -24);
    const input = new Uint8Array(values.byteLength + 1).subarray(1); // misaligned input
    input.set(new Uint8Array(values.buffer));
    const output = new Uint8Array(values.length * 2 + 1).subarray(1); // misaligned output
    halfFloatTransform.apply(input, output);
    const bits = new Uint16Array(output.slice().buffer);
    expect(Array.from(bits)).toEqual(Array.from(values, half));
  });

  it('copies misaligned Buffers (whose slice() is a view) before viewing them as words', () => {
    const values = Float32Array.of(0.5, -3, 1e-6);
    const input = Buffer.alloc(values.byteLength + 3).subarray(3);
    input.set(new Uint8Array(values.buffer));
    const output = Buffer.alloc(values.length * 2 + 1).subarray(1);
    halfFloatTransform.apply(input, output);
    expect(Array.from(new Uint16Array(new Uint8Array(output).buffer))).toEqual(Array.from(values, half));
  });

  it('rejects inputs that are not whole float32 values', () => {
    expect(() => halfFloatTransform.apply(new Uint8Array(6), new Uint8Array(3))).toThrow(/multiple of 4/);
  });
});

describe.skipIf(!faissPythonAvailable())(
  `float32 -> fp16 agrees with numpy${unlessPython(faissPythonAvailable(), FAISS_115_PYTHON)}`,
  () => {
    const tmp = tempDir('fp16-');
    afterAll(() => tmp.remove());

    it('on a sweep of float32 bit patterns and the edge cases', async () => {
      const patterns: number[] = [];
      for (let bits = 0; bits < 2 ** 32; bits += 4093) patterns.push(bits);
      // Around the subnormal, normal and overflow boundaries, bit by bit.
      for (const edge of [
        0x33000000, 0x33800000, 0x387fc000, 0x38800000, 0x477fe000, 0x477ff000, 0x7f800000,
      ]) {
        for (let k = -40; k <= 40; k++) patterns.push(edge + k, (edge + k) | 0x80000000);
      }
      const input = Uint32Array.from(patterns, (b) => b >>> 0);
      const inFile = path.join(tmp.dir, 'in.f32');
      const outFile = path.join(tmp.dir, 'out.f16');
      writeFileSync(inFile, new Uint8Array(input.buffer));
      await runPythonJson(FAISS_115_PYTHON, path.join(REPO_ROOT, 'test/python/fp16_reference.py'), [
        inFile,
        outFile,
      ]);
      const reference = new Uint16Array(new Uint8Array(readFileSync(outFile)).buffer);
      const ours = float32ToFloat16(new Float32Array(input.buffer), new Uint16Array(input.length));
      let compared = 0;
      for (let i = 0; i < input.length; i++) {
        const isNaN = (input[i]! & 0x7fffffff) > 0x7f800000;
        if (isNaN) {
          // numpy keeps the payload bits; we return a quiet NaN. Both are NaN with the same sign.
          expect(ours[i]! & 0xfc00).toBe(reference[i]! & 0xfc00);
          continue;
        }
        if (ours[i] !== reference[i]) {
          throw new Error(
            `float32 bits 0x${input[i]!.toString(16)}: ours 0x${ours[i]!.toString(16)}, numpy 0x${reference[i]!.toString(16)}`,
          );
        }
        compared++;
      }
      expect(compared).toBeGreaterThan(1_000_000);
    });
  },
);

describe.skipIf(!nativeConvert())('the native converters (addon built)', () => {
  it('float32 -> fp16 gives the same bits as the JS conversion on a sweep of patterns, threaded sizes too', () => {
    const n = 3 * 2 ** 20 + 5; // over the addon's threading threshold, not a multiple of 8
    const input = new Uint32Array(n);
    for (let i = 0; i < n; i++) input[i] = Math.imul(i, 2654435761) >>> 0;
    for (const [i, edge] of [
      0x33000000, 0x387fc000, 0x38800000, 0x477ff000, 0x7f800000, 0x7fc00001,
    ].entries()) {
      for (let k = -40; k <= 40; k++) input[i * 100 + k + 40] = (edge + k) >>> 0;
    }
    const bytes = new Uint8Array(input.buffer);
    const native = new Uint8Array(2 * n);
    nativeConvert()!.f32ToF16(bytes, native);
    const js = float32ToFloat16(new Float32Array(input.buffer), new Uint16Array(n));
    expect(Buffer.from(native).equals(Buffer.from(js.buffer))).toBe(true);
  });

  it('int8 codes are the value + 128 (the top bit flipped)', () => {
    const input = Uint8Array.from({ length: 5 * 2 ** 20 + 3 }, (_, i) => i & 0xff);
    const out = new Uint8Array(input.length);
    nativeConvert()!.int8Codes(input, out);
    expect(out.every((v, i) => v === (input[i]! ^ 0x80))).toBe(true);
  });
});
