// Seeded synthetic vectors shaped like real embeddings (clusters on a low-dimensional manifold), their byte,
// half_float and binary variants, and exact k-NN ground truth for recall checks in tests and benchmarks.
import { float16ToFloat32, float32ToFloat16 } from '../../src/vectors/fp16.js';

export type Metric = 'l2' | 'innerproduct' | 'hamming';

/** A seeded uniform generator in [0, 1) (mulberry32: small, fast, good enough for test data). */
export function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded standard normal generator (Box-Muller on `uniform`). */
export function normal(seed: number): () => number {
  const u = uniform(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const a = 2 * Math.PI * u();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
}

export interface ClusteredOptions {
  count: number;
  dimension: number;
  seed: number;
  /** Gaussian clusters in the latent space (default 64). */
  clusters?: number;
  /** Dimension of the latent space the clusters live in (default 16, at most `dimension`). */
  latentDimension?: number;
  /** Standard deviation of the cluster centres / of points around their centre, in latent units. */
  centreSpread?: number;
  clusterSpread?: number;
  /** Standard deviation of the isotropic noise added in the full space (default 0.05). */
  noise?: number;
}

/**
 * `count` vectors of `dimension` floats, row-major: C Gaussian clusters in a low-dimensional latent space,
 * projected to `dimension` by one random matrix, plus small noise. The same options give the same vectors,
 * so base and query sets drawn together (then split with `splitRows`) share clusters.
 */
export function clusteredFloat(o: ClusteredOptions): Float32Array {
  const d = o.dimension;
  const latent = Math.min(o.latentDimension ?? 16, d);
  const clusters = o.clusters ?? 64;
  const centreSpread = o.centreSpread ?? 1;
  const clusterSpread = o.clusterSpread ?? 0.35;
  const noise = o.noise ?? 0.05;
  const g = normal(o.seed);
  const centres = Float64Array.from({ length: clusters * latent }, () => g() * centreSpread);
  const projection = Float64Array.from({ length: latent * d }, () => g() / Math.sqrt(latent));
  const out = new Float32Array(o.count * d);
  const z = new Float64Array(latent);
  const pick = uniform(o.seed ^ 0x5bd1e995);
  for (let i = 0; i < o.count; i++) {
    const c = Math.floor(pick() * clusters);
    for (let l = 0; l < latent; l++) z[l] = centres[c * latent + l]! + g() * clusterSpread;
    const row = i * d;
    for (let j = 0; j < d; j++) out[row + j] = g() * noise;
    for (let l = 0; l < latent; l++) {
      const zl = z[l]!;
      const p = l * d;
      for (let j = 0; j < d; j++) out[row + j]! += zl * projection[p + j]!;
    }
  }
  return out;
}

/** Scales rows to unit length in place (cosine data arrives normalised, as inner product). */
export function normalizeRows(x: Float32Array, dimension: number): Float32Array {
  for (let row = 0; row < x.length; row += dimension) {
    let s = 0;
    for (let j = 0; j < dimension; j++) s += x[row + j]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dimension; j++) x[row + j]! *= inv;
  }
  return x;
}

/** Rows [0, first) and [first, end) of a row-major set, as views. */
export function splitRows<T extends Float32Array | Int8Array | Uint8Array | Uint16Array>(
  x: T,
  rowLength: number,
  first: number,
): [T, T] {
  return [x.subarray(0, first * rowLength) as T, x.subarray(first * rowLength) as T];
}

/** int8 vectors: `x` scaled so its largest magnitude maps to 127, rounded. */
export function toInt8(x: Float32Array): Int8Array {
  let max = 0;
  for (const v of x) max = Math.max(max, Math.abs(v));
  const scale = max > 0 ? 127 / max : 1;
  // A plain loop: Int8Array.from(x, fn) goes through a JS list of every value (out of heap for large sets).
  const codes = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) codes[i] = Math.max(-128, Math.min(127, Math.round(x[i]! * scale)));
  return codes;
}

/** Packed bits (dimension / 8 bytes per vector, most significant bit first within a byte): bit j = x[j] > 0. */
export function toBits(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length / 8);
  for (let i = 0; i < x.length; i++) if (x[i]! > 0) out[i >> 3]! |= 0x80 >> (i & 7);
  return out;
}

/** Clustered binary codes: the sign pattern of clustered float vectors (random hyperplanes keep closeness). */
export function clusteredBinary(o: ClusteredOptions): Uint8Array {
  return toBits(clusteredFloat({ noise: 0.2, ...o }));
}

/** half_float vectors as the index stores them: fp16 bits, rounded to nearest even (the service's conversion). */
export function toFloat16Array(x: Float32Array): Uint16Array {
  return float32ToFloat16(x, new Uint16Array(x.length));
}

/** The exact float values of fp16 bits. */
export function fromFloat16Array(h: Uint16Array): Float32Array {
  return float16ToFloat32(h);
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, i) => {
  let c = 0;
  for (let v = i; v; v >>= 1) c += v & 1;
  return c;
});

/** Vectors to search among: floats (l2, inner product) or packed bits (hamming). */
export interface VectorTable {
  readonly metric: Metric;
  /** Elements per vector: floats, or bits for hamming. */
  readonly dimension: number;
  readonly data: Float32Array | Int8Array | Uint8Array;
}

/**
 * distance(q, i): how far row q of `queries` is from row i of `base`, smaller is closer
 * (squared L2, negated inner product, hamming bits), the order Faiss's HNSW walks in.
 */
export function distanceFunction(base: VectorTable, queries: VectorTable): (q: number, i: number) => number {
  const { metric, dimension: d } = base;
  const a = queries.data;
  const b = base.data;
  if (metric === 'hamming') {
    const bytes = d / 8;
    return (q, i) => {
      let s = 0;
      for (let j = 0; j < bytes; j++) s += POPCOUNT[a[q * bytes + j]! ^ b[i * bytes + j]!]!;
      return s;
    };
  }
  if (metric === 'innerproduct') {
    return (q, i) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += a[q * d + j]! * b[i * d + j]!;
      return -s;
    };
  }
  return (q, i) => {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const t = a[q * d + j]! - b[i * d + j]!;
      s += t * t;
    }
    return s;
  };
}

export function rowCount(t: VectorTable): number {
  return t.metric === 'hamming' ? (t.data.length * 8) / t.dimension : t.data.length / t.dimension;
}

/** Exact k nearest neighbours: per query, k ids and distances, closest first (ties by smaller id). */
export interface KnnTruth {
  readonly k: number;
  readonly ids: Int32Array;
  readonly distances: Float64Array;
}

/** Brute-force k-NN of every query over the base (fine for tests: a few thousand by a few hundred). */
export function exactKnn(base: VectorTable, queries: VectorTable, k: number): KnnTruth {
  const dist = distanceFunction(base, queries);
  const n = rowCount(base);
  const nq = rowCount(queries);
  const ids = new Int32Array(nq * k).fill(-1);
  const distances = new Float64Array(nq * k).fill(Infinity);
  for (let q = 0; q < nq; q++) {
    const o = q * k;
    for (let i = 0; i < n; i++) {
      const v = dist(q, i);
      if (v >= distances[o + k - 1]!) continue;
      let j = k - 1; // insertion into the sorted top k
      while (j > 0 && distances[o + j - 1]! > v) {
        distances[o + j] = distances[o + j - 1]!;
        ids[o + j] = ids[o + j - 1]!;
        j--;
      }
      distances[o + j] = v;
      ids[o + j] = i;
    }
  }
  return { k, ids, distances };
}

/**
 * recall@k: the share of the true k nearest found among each query's first k results, averaged. A result
 * tied with the k-th true distance counts as found (hamming and byte data have many ties).
 */
export function recallAtK(
  base: VectorTable,
  queries: VectorTable,
  found: readonly ArrayLike<number>[],
  truth: KnnTruth,
): number {
  const dist = distanceFunction(base, queries);
  const k = truth.k;
  let hits = 0;
  found.forEach((ids, q) => {
    const kth = truth.distances[q * k + k - 1]!;
    const seen = new Set<number>();
    for (let r = 0; r < Math.min(k, ids.length); r++) {
      const id = ids[r]!;
      if (id < 0 || seen.has(id)) continue;
      seen.add(id);
      if (dist(q, id) <= kth + 1e-6 * Math.max(1, Math.abs(kth))) hits++;
    }
  });
  return hits / (found.length * k);
}

/**
 * Float data as a builder receives it for `dataType` (fp32, fp16 bits or int8), and the exact float values the
 * index then holds (recall is measured against those).
 */
export function asStored(
  all: Float32Array,
  dataType: 'float' | 'half_float' | 'byte',
): { stored: Float32Array | Uint16Array | Int8Array; held: Float32Array } {
  if (dataType === 'half_float') {
    const stored = toFloat16Array(all);
    return { stored, held: fromFloat16Array(stored) };
  }
  if (dataType === 'byte') {
    const stored = toInt8(all);
    return { stored, held: Float32Array.from(stored) };
  }
  return { stored: all, held: all };
}
