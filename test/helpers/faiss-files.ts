// Small, correct inputs for the Faiss writer in tests: seeded vectors of every data type, exact k-NN graphs (a
// valid HNSW base level), a simple two-level hierarchy for the layouts that need an entry point, and a helper that
// writes the file through the streaming writer.
import { createWriteStream } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { FaissFormat } from '../../src/faiss-format/formats.js';
import type { HnswGraph } from '../../src/faiss-format/hnsw-graph.js';
import type { FaissIndexInput } from '../../src/faiss-format/validate.js';
import { writeFaissIndex } from '../../src/faiss-format/writer.js';
import { float16BitsToFloat32, float32ToFloat16 } from '../../src/vectors/fp16.js';
import type { DataType, SpaceType, VectorArray, VectorSet } from '../../src/vectors/types.js';
import { uniform } from './synthetic.js';

/** Seeded uniform numbers in [0, 1) (the one generator of test/helpers/synthetic.ts). */
export const random = uniform;

export interface TestData {
  readonly vectors: VectorSet;
  /** float32 values of every vector (decoded fp16, int8 as float; binary: unused). */
  readonly floats: Float32Array;
  readonly ids: Int32Array;
  readonly spaceType: SpaceType;
}

/** `count` seeded vectors of a data type, as the parser would hand them over, and spread-out doc ids. */
export function testData(
  dataType: DataType,
  count: number,
  dimension: number,
  seed = 7,
  spaceType?: SpaceType,
): TestData {
  const rnd = random(seed);
  const space = spaceType ?? (dataType === 'binary' ? 'hamming' : 'l2');
  const ids = Int32Array.from({ length: count }, (_, i) => 1000 + 3 * i + (i % 2));
  if (dataType === 'binary') {
    const bytes = Uint8Array.from({ length: (count * dimension) / 8 }, () => Math.floor(rnd() * 256));
    return {
      vectors: set(dataType, dimension, count, bytes),
      floats: new Float32Array(0),
      ids,
      spaceType: space,
    };
  }
  if (dataType === 'byte') {
    const values = Int8Array.from({ length: count * dimension }, () => Math.floor(rnd() * 256) - 128);
    return {
      vectors: set(dataType, dimension, count, values),
      floats: Float32Array.from(values),
      ids,
      spaceType: space,
    };
  }
  const floats = Float32Array.from({ length: count * dimension }, () => rnd() * 2 - 1);
  if (space === 'innerproduct') normalize(floats, dimension);
  if (dataType === 'float')
    return { vectors: set(dataType, dimension, count, floats), floats, ids, spaceType: space };
  const half = float32ToFloat16(floats, new Uint16Array(floats.length));
  const decoded = Float32Array.from(half, float16BitsToFloat32);
  return { vectors: set(dataType, dimension, count, half), floats: decoded, ids, spaceType: space };
}

function set(dataType: DataType, dimension: number, count: number, values: VectorArray): VectorSet {
  return { dataType, dimension, count, chunks: [values] };
}

function normalize(values: Float32Array, d: number): void {
  for (let at = 0; at < values.length; at += d) {
    const row = values.subarray(at, at + d);
    const norm = Math.hypot(...row);
    for (let j = 0; j < d; j++) row[j] = row[j]! / norm;
  }
}

/** Distance (smaller is nearer) between vectors a and b of the data. */
export function distanceOf(data: TestData): (a: number, b: number) => number {
  const { vectors, floats, spaceType } = data;
  const d = vectors.dimension;
  if (vectors.dataType === 'binary') {
    const bytes = Uint8Array.from(vectors.chunks.flatMap((c) => Array.from(c)));
    const w = d / 8;
    return (a, b) => {
      let dist = 0;
      for (let j = 0; j < w; j++) dist += popcount(bytes[a * w + j]! ^ bytes[b * w + j]!);
      return dist;
    };
  }
  if (spaceType === 'innerproduct') {
    return (a, b) => {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += floats[a * d + j]! * floats[b * d + j]!;
      return -dot;
    };
  }
  return (a, b) => {
    let sum = 0;
    for (let j = 0; j < d; j++) sum += (floats[a * d + j]! - floats[b * d + j]!) ** 2;
    return sum;
  };
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x; v; v &= v - 1) n++;
  return n;
}

/** The `slots` nearest other members of `among` for `node`, -1 padded (valid ids first). */
function nearest(
  node: number,
  among: readonly number[],
  slots: number,
  dist: (a: number, b: number) => number,
): number[] {
  const ranked = among
    .filter((j) => j !== node)
    .map((j) => [dist(node, j), j] as const)
    .sort((x, y) => x[0] - y[0] || x[1] - y[1])
    .slice(0, slots)
    .map(([, j]) => j);
  while (ranked.length < slots) ranked.push(-1);
  return ranked;
}

/** Exact k-NN graph with 2M links per node: a valid base-level-only (CAGRA-style) HNSW graph. */
export function baseLevelGraph(data: TestData, M: number): HnswGraph {
  const n = data.vectors.count;
  const dist = distanceOf(data);
  const all = Array.from({ length: n }, (_, i) => i);
  const neighbors = new Int32Array(n * 2 * M);
  for (let i = 0; i < n; i++) neighbors.set(nearest(i, all, 2 * M, dist), i * 2 * M);
  return { M, neighbors, entryPoint: -1, maxLevel: -1 };
}

/**
 * A two-level HNSW: every `stride`-th node also on level 1, linked to its M nearest level-1 nodes; level 0 is the
 * exact k-NN graph. Node 0 (on level 1) is the entry point.
 */
export function twoLevelGraph(data: TestData, M: number, stride = 10): HnswGraph {
  const n = data.vectors.count;
  const dist = distanceOf(data);
  const all = Array.from({ length: n }, (_, i) => i);
  const upper = all.filter((i) => i % stride === 0);
  const levels = Int32Array.from(all, (i) => (i % stride === 0 ? 2 : 1));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(...nearest(i, all, 2 * M, dist));
    if (levels[i] === 2) out.push(...nearest(i, upper, M, dist));
  }
  return { M, levels, neighbors: Int32Array.from(out), entryPoint: 0, maxLevel: 1 };
}

export function indexInput(data: TestData, graph: HnswGraph, format: FaissFormat): FaissIndexInput {
  return {
    format,
    graph,
    vectors: data.vectors,
    ids: data.ids,
    spaceType: data.spaceType,
    efConstruction: 40,
    efSearch: 64,
  };
}

/** Writes the index through writeFaissIndex into a file; returns the bytes written. */
export function writeIndexFile(
  input: FaissIndexInput,
  file: string,
  pieceBytes = 64 * 1024,
): Promise<number> {
  return writeFaissIndex(input, createWriteStream(file), { pieceBytes });
}

/** Appended to the name of a suite that needs a Faiss Python: says why it is skipped when it is. */
export function unlessPython(available: boolean, python: string): string {
  return available ? '' : ` [skipped: no ${python}; run scripts/setup.sh --test]`;
}

/** A fresh temporary folder and a function that removes it. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Queries near chosen vectors (the "planted" nearest neighbours), as raw bytes for faiss_check.py search. */
export function plantedQueries(data: TestData, picks: readonly number[], seed = 3): Uint8Array {
  const { vectors, floats } = data;
  const d = vectors.dimension;
  const rnd = random(seed);
  if (vectors.dataType === 'binary') {
    const w = d / 8;
    const bytes = vectors.chunks[0] as Uint8Array;
    const out = new Uint8Array(picks.length * w);
    picks.forEach((p, q) => {
      out.set(bytes.subarray(p * w, (p + 1) * w), q * w);
      out[q * w + Math.floor(rnd() * w)]! ^= 1 << Math.floor(rnd() * 8); // one bit away
    });
    return out;
  }
  const out = new Float32Array(picks.length * d);
  picks.forEach((p, q) => {
    for (let j = 0; j < d; j++) out[q * d + j] = floats[p * d + j]! + (rnd() - 0.5) * 1e-3;
  });
  return new Uint8Array(out.buffer);
}
