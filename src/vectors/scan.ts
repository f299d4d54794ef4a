// Tight scans for values a Faiss index must never hold (NaN, ±Infinity). They look only at exponent bits, so
// they run at a few GB/s over the raw data without touching floating-point units. Every float .knnvec is scanned
// whole before its build: the addon's threaded scans (src/native/convert) run where it is built (a 3 GB set in
// about 0.1 s instead of about 1 s on the JS thread); these loops are the fallback and the reference.
import { nativeConvert } from './fp16.js';

const bytesOf = (v: Float32Array | Uint16Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** Index of the first float32 that is NaN or ±Infinity, or -1. */
export function findNonFiniteFloat32(values: Float32Array): number {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    if ((bits[i]! & 0x7f800000) === 0x7f800000) return i;
  }
  return -1;
}

/**
 * Index (from `from`) of the first float32 whose magnitude is at least 2^(biasedExponent - 127), NaN and
 * ±Infinity included (their exponent bits are all ones), or -1.
 */
export function findFloat32AtLeast(values: Float32Array, from: number, biasedExponent: number): number {
  const native = nativeConvert();
  if (native) return native.findFloat32AtLeast(bytesOf(values), from, biasedExponent);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const threshold = biasedExponent << 23;
  const n = bits.length;
  for (let i = from; i < n; i++) {
    if ((bits[i]! & 0x7f800000) >= threshold) return i;
  }
  return -1;
}

/** Index of the first fp16 value (given as bits) that is NaN or ±Infinity, or -1. */
export function findNonFiniteFloat16(values: Uint16Array): number {
  const native = nativeConvert();
  if (native) return native.findNonFiniteFloat16(bytesOf(values));
  // Two values per 32-bit word when aligned: half the loop iterations.
  if (values.byteOffset % 4 !== 0) return findIn(values, 0, values.length);
  const pairs = values.length >>> 1;
  const words = new Uint32Array(values.buffer, values.byteOffset, pairs);
  for (let w = 0; w < pairs; w++) {
    const v = words[w]!;
    if ((v & 0x7c00) === 0x7c00 || (v & 0x7c000000) === 0x7c000000) return findIn(values, 2 * w, 2 * w + 2);
  }
  return findIn(values, 2 * pairs, values.length);
}

function findIn(values: Uint16Array, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    if ((values[i]! & 0x7c00) === 0x7c00) return i;
  }
  return -1;
}
