// Test data shared by the storage tests.
import type { StorageErrorCode } from '../../src/storage/errors.js';
import type { PartTransform } from '../../src/storage/types.js';

/** Deterministic bytes that differ at every offset of a part (so a misplaced byte shows). */
export function pattern(length: number, seed = 1): Buffer {
  const data = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return data;
}

/** A 4 -> 2 byte transform (the shape of fp32 -> fp16) that is easy to check: keeps bytes 0 and 3 of each word. */
export function halfOfEachWord(): PartTransform {
  return {
    inputUnit: 4,
    outputUnit: 2,
    apply(input, output) {
      for (let i = 0, o = 0; i < input.length; i += 4, o += 2) {
        output[o] = input[i]!;
        output[o + 1] = input[i + 3]!;
      }
    },
  };
}

/** What halfOfEachWord makes of `input`. */
export function halved(input: Uint8Array): Buffer {
  const out = Buffer.alloc(input.length / 2);
  halfOfEachWord().apply(input, out);
  return out;
}

/** The bytes of a blob's chunks, in order. */
export function joined(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/** The error `promise` rejects with; fails the test when it resolves. */
export async function failure(promise: Promise<unknown>): Promise<Error & { code?: StorageErrorCode }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: StorageErrorCode };
  }
  throw new Error('expected a failure');
}
