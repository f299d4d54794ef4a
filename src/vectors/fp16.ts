// float32 -> IEEE fp16 conversion (round to nearest, ties to even, as numpy and Faiss's encoder do), for half_float
// vectors: k-NN sends them as float32 and the index stores fp16. This runs over gigabytes, so the hot loop works on
// the raw bits (Uint32Array in, Uint16Array out) with one branch for the common normal range.
import { optionalAddon } from '../builders/native.js';
import type { PartTransform } from '../storage/types.js';

const FP16_INF = 0x7c00;
/** Largest finite fp16 value; float32 magnitudes >= 65520 round to infinity. */
export const FP16_MAX = 65504;

/** fp16 bits of one float32 given as its bits (uint32). NaN stays a quiet NaN, overflow becomes infinity. */
export function float32BitsToFloat16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x38800000) {
    // >= 2^-14: a normal fp16 unless it overflows (>= 65520 rounds up to infinity) or is already Inf/NaN.
    if (abs >= 0x477ff000) return sign | (abs > 0x7f800000 ? 0x7e00 | ((abs >>> 13) & 0x3ff) : FP16_INF);
    // Re-bias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even; a carry
    // out of the mantissa correctly bumps the exponent.
    return sign | ((abs - 0x38000000 + 0xfff + ((abs >>> 13) & 1)) >>> 13);
  }
  return sign | subnormalHalf(abs);
}

// |x| < 2^-14: an fp16 subnormal, value = q * 2^-24. Rare, so clarity over speed.
function subnormalHalf(abs: number): number {
  if (abs <= 0x33000000) return 0; // <= 2^-25: rounds to zero (the tie at 2^-25 goes to the even 0)
  const exponent = abs >>> 23;
  const mantissa = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exponent; // 14..24
  let q = mantissa >>> shift;
  const rest = mantissa & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (q & 1) === 1)) q++;
  return q; // q = 0x400 is the smallest normal, which is also its correct encoding
}

/** float32 value of fp16 bits (exact). */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** Converts whole arrays: out[i] = fp16(input[i]). Lengths must match. */
export function float32ToFloat16(input: Float32Array, out: Uint16Array): Uint16Array {
  if (out.length !== input.length) {
    throw new RangeError(`fp16 output holds ${out.length} values but the input has ${input.length}`);
  }
  convertBits(new Uint32Array(input.buffer, input.byteOffset, input.length), out);
  return out;
}

/** Converts fp16 bits back to float32 (for checks and tests). */
export function float16ToFloat32(input: Uint16Array, out = new Float32Array(input.length)): Float32Array {
  for (let i = 0; i < input.length; i++) out[i] = float16BitsToFloat32(input[i]!);
  return out;
}

function convertBits(bits: Uint32Array, out: Uint16Array): void {
  const n = bits.length;
  for (let i = 0; i < n; i++) out[i] = float32BitsToFloat16Bits(bits[i]!);
}

/**
 * The storage layer applies this while downloading a half_float `.knnvec`: every 4 bytes of little-endian
 * float32 become 2 bytes of fp16. Non-finite or out-of-range values become fp16 NaN/Inf, which
 * parseVectorBlob then reports with the vector and element that held them.
 */
export const halfFloatTransform: PartTransform = {
  inputUnit: 4,
  outputUnit: 2,
  apply(input: Uint8Array, output: Uint8Array): void {
    const count = input.length / 4;
    if (!Number.isInteger(count) || output.length !== count * 2) {
      throw new RangeError(
        `half_float transform: ${input.length} input bytes must be a multiple of 4 and the output must be ` +
          `half as long (got ${output.length} bytes)`,
      );
    }
    const native = nativeConvert();
    if (native) return native.f32ToF16(input, output);
    const bits = aligned(input, 4, (b) => new Uint32Array(b.buffer, b.byteOffset, count));
    if (output.byteOffset % 2 === 0) {
      convertBits(bits, new Uint16Array(output.buffer, output.byteOffset, count));
      return;
    }
    const tmp = new Uint16Array(count);
    convertBits(bits, tmp);
    output.set(new Uint8Array(tmp.buffer));
  },
};

/** The addon's converter (F16C, threads), unless KNN_NATIVE_CONVERT=0 or the addon is missing: then JS. */
export function nativeConvert(): ReturnType<typeof optionalAddon> {
  if (process.env.KNN_NATIVE_CONVERT === '0') return undefined;
  return optionalAddon();
}

// A typed view when the bytes sit at an aligned offset, else a view over an aligned copy.
function aligned<T>(bytes: Uint8Array, alignment: number, view: (b: Uint8Array) => T): T {
  // new Uint8Array(x) copies even when x is a Buffer (whose slice() would only be another view).
  return view(bytes.byteOffset % alignment === 0 ? bytes : new Uint8Array(bytes));
}
