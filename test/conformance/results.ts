// The conformance suite's results (one row per file x checker), where they are written, and the flat storage
// k-NN wires into a skip_stored_vectors file before searching it.
import path from 'node:path';

import type { DataType, SpaceType } from '../../src/vectors/types.js';
import type { CheckerRelease } from '../helpers/knn-checker.js';
import type { VectorTable } from '../helpers/synthetic.js';

export interface ConformanceResult {
  key: string;
  builder: 'cpu' | 'gpu';
  policy: string;
  dataType: DataType;
  space: SpaceType;
  dimension: number;
  skip: boolean;
  /** index fourcc / storage fourcc as written. */
  layout: string;
  checker: CheckerRelease;
  /** The k-NN releases standing behind this checker that can send this request (empty: none sends it). */
  releases: string[];
  expectedLoads: boolean;
  loads: boolean;
  /** recall@10 against exact ground truth (only where a release sends the request and the file loads). */
  recall?: number;
  /** Share of the true neighbours inside the radius that radial search returned (float types). */
  rangeRecall?: number;
}

const ROOT = path.resolve(import.meta.dirname, '../..');

export function resultsFile(builder: string): string {
  return path.join(ROOT, 'build/conformance', `results-${builder}.json`);
}

/**
 * Faiss's flat storage for the vectors, as k-NN's FaissFlatIndexFactory wires Lucene's vectors into a null
 * storage: IxF2/IxFI (float32 rows) for float types, IBxF (codes) for binary. Layout: src/faiss-format/README.md.
 */
export function storageBytes(
  set: { base: VectorTable; flat: Uint8Array },
  c: { dimension: number; count: number },
  binary: boolean,
): Buffer {
  const head = Buffer.alloc(binary ? 4 + 4 + 4 + 8 + 1 + 4 + 8 : 4 + 4 + 8 + 8 + 8 + 1 + 4 + 8);
  let at = head.write(binary ? 'IBxF' : set.base.metric === 'innerproduct' ? 'IxFI' : 'IxF2', 'latin1');
  at = head.writeInt32LE(c.dimension, at);
  if (binary) {
    at = head.writeInt32LE(c.dimension / 8, at);
    at = head.writeBigInt64LE(BigInt(c.count), at);
  } else {
    at = head.writeBigInt64LE(BigInt(c.count), at);
    at = head.writeBigInt64LE(1n << 20n, at);
    at = head.writeBigInt64LE(1n << 20n, at);
  }
  at = head.writeUInt8(1, at); // is_trained
  at = head.writeInt32LE(binary || set.base.metric !== 'innerproduct' ? 1 : 0, at);
  head.writeBigUInt64LE(BigInt(binary ? set.flat.length : set.flat.length / 4), at);
  return Buffer.concat([head, set.flat]);
}
