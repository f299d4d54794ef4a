// CRC32 (the zlib/S3 polynomial) for whole-object checks when parts arrive in parallel and out of order:
// each part's CRC is computed on its own, then combined in object order without touching the bytes again.
import zlib from 'node:zlib';

const POLY = 0xedb88320; // reflected CRC-32 polynomial

/** CRC32 of `data`, continuing from `previous` (0 for a fresh start). */
export function crc32(data: Uint8Array, previous = 0): number {
  return zlib.crc32(data, previous);
}

/** (a * b) mod p over GF(2), bit-reflected as zlib does it. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) mod p. */
const X2N: number[] = (() => {
  const table = [0x40000000]; // x^1
  for (let k = 1; k < 32; k++) table.push(multModP(table[k - 1]!, table[k - 1]!));
  return table;
})();

/** x^(n * 2^k) mod p, for n up to 2^53. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** CRC32 of A followed by B, from crc32(A), crc32(B) and B's length (zlib's crc32_combine). */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(x2nModP(lengthB, 3), crcA) ^ crcB) >>> 0;
}

/** S3's wire form of a CRC32: the 4 big-endian bytes, base64. */
export function crc32ToBase64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0);
  return bytes.toString('base64');
}

/** Parses S3's base64 CRC32; undefined for anything else (e.g. a composite "xxxx-12" value). */
export function crc32FromBase64(value: string): number | undefined {
  if (!/^[A-Za-z0-9+/]{6}==$/.test(value)) return undefined;
  return Buffer.from(value, 'base64').readUInt32BE(0);
}
