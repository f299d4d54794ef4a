// The NaN/Inf scans find the first bad value wherever it sits: aligned or not, odd lengths, either half of a word.
import { describe, expect, it } from 'vitest';

import { findNonFiniteFloat16, findNonFiniteFloat32 } from '../../src/vectors/scan.js';

describe('findNonFiniteFloat32', () => {
  it('finds NaN, +Infinity and -Infinity but not the largest finite values', () => {
    const values = Float32Array.of(0, -0, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45);
    expect(findNonFiniteFloat32(values)).toBe(-1);
    for (const bad of [NaN, Infinity, -Infinity]) {
      const v = new Float32Array(9);
      v[7] = bad;
      expect(findNonFiniteFloat32(v)).toBe(7);
      expect(findNonFiniteFloat32(v.subarray(3))).toBe(4);
    }
  });
});

describe('findNonFiniteFloat16', () => {
  it('finds the first fp16 NaN or Inf in either half of a word, at odd offsets and lengths', () => {
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
  });
});
