// Tight scans for values a Faiss index must never hold (NaN, ±Infinity). They look only at exponent bits, so
// they run at a few GB/s over the raw data without touching floating-point units.

/** Index of the first float32 that is NaN or ±Infinity, or -1. */
export function findNonFiniteFloat32(values: Float32Array): number {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    if ((bits[i]! & 0x7f800000) === 0x7f800000) return i;
  }
  return -1;
}

/** Index of the first fp16 value (given as bits) that is NaN or ±Infinity, or -1. */
export function findNonFiniteFloat16(values: Uint16Array): number {
  const n = values.length;
  for (let i = 0; i < n; i++) {
    if ((values[i]! & 0x7c00) === 0x7c00) return i;
  }
  return -1;
}
