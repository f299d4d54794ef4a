// The NaN/Inf scans find the first bad value wherever it sits: aligned or not, odd lengths, either half of a word.
// Each runs twice: through the addon's threaded scans and through the JS loops (KNN_NATIVE_CONVERT=0).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { optionalAddon } from '../../src/builders/native.js';
import { findFloat32AtLeast, findNonFiniteFloat16, findNonFiniteFloat32 } from '../../src/vectors/scan.js';

const paths = [
  ['JS', '0'],
  ['the addon', '1'],
] as const;

describe.each(paths)('scans (%s)', (name, setting) => {
  const skip = name === 'the addon' && !optionalAddon();
  const before = process.env.KNN_NATIVE_CONVERT;
  beforeAll(() => {
    process.env.KNN_NATIVE_CONVERT = setting;
  });
  afterAll(() => {
    if (before === undefined) delete process.env.KNN_NATIVE_CONVERT;
    else process.env.KNN_NATIVE_CONVERT = before;
  });

  it.skipIf(skip)(
    'findNonFiniteFloat32 finds NaN, +Infinity and -Infinity but not the largest finite values',
    () => {
      const values = Float32Array.of(0, -0, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45);
      expect(findNonFiniteFloat32(values)).toBe(-1);
      for (const bad of [NaN, Infinity, -Infinity]) {
        const v = new Float32Array(9);
        v[7] = bad;
        expect(findNonFiniteFloat32(v)).toBe(7);
        expect(findNonFiniteFloat32(v.subarray(3))).toBe(4);
      }
    },
  );

  it.skipIf(skip)(
    'findFloat32AtLeast finds the first large or non-finite value from `from`, in big arrays too',
    () => {
      const LARGE = 183; // 2^56
      const small = Float32Array.of(1, -2, 2 ** 55, -(2 ** 55), 2 ** 56, NaN);
      expect(findFloat32AtLeast(small, 0, LARGE)).toBe(4);
      expect(findFloat32AtLeast(small, 5, LARGE)).toBe(5);
      expect(findFloat32AtLeast(small, 6, LARGE)).toBe(-1);
      expect(findFloat32AtLeast(small.subarray(0, 4), 0, LARGE)).toBe(-1);
      // 48 MiB: split over threads; the lowest hit wins whichever slice sees its own first.
      const big = new Float32Array(12 * 2 ** 20).fill(0.5);
      expect(findFloat32AtLeast(big, 0, LARGE)).toBe(-1);
      big[big.length - 1] = Infinity;
      big[9_000_001] = -(2 ** 60);
      big[5_000_003] = NaN;
      expect(findFloat32AtLeast(big, 0, LARGE)).toBe(5_000_003);
      expect(findFloat32AtLeast(big, 5_000_004, LARGE)).toBe(9_000_001);
      expect(findFloat32AtLeast(big, 9_000_002, LARGE)).toBe(big.length - 1);
      expect(findFloat32AtLeast(big.subarray(1), 0, LARGE)).toBe(5_000_002); // a view at an offset
    },
  );

  it.skipIf(skip)(
    'findNonFiniteFloat16 finds the first NaN or Inf in either half of a word, at odd offsets and lengths',
    () => {
      const v = new Uint16Array(11).fill(0x7bff); // fp16 max: finite
      expect(findNonFiniteFloat16(v)).toBe(-1);
      v[6] = 0xfc00; // -Inf, low half of a word
      expect(findNonFiniteFloat16(v)).toBe(6);
      v[3] = 0x7e00; // NaN, high half of a word
      expect(findNonFiniteFloat16(v)).toBe(3);
      expect(findNonFiniteFloat16(v.subarray(1))).toBe(2); // misaligned view
      expect(findNonFiniteFloat16(v.subarray(4, 6))).toBe(-1);
      v.fill(0x3c00);
      v[10] = 0x7c00; // the odd last element
      expect(findNonFiniteFloat16(v)).toBe(10);
      const big = new Uint16Array(24 * 2 ** 20).fill(0x3c00);
      big[20_000_000] = 0x7c00;
      big[7_777_777] = 0xfe00;
      expect(findNonFiniteFloat16(big)).toBe(7_777_777);
    },
  );
});
