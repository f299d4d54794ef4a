// One conformance check: a build request sent through a running service, the file it wrote loaded by all
// three of k-NN's Faiss checkers and searched by those of the releases that can send the request (see
// knn-releases.test.ts for what is asserted). Plain node:assert, so the GPU machine runs it without vitest
// (test/gpu/conformance.ts).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { chooseFormat, formatPolicy } from '../../src/faiss-format/policy.js';
import { readFaissIndexFile } from '../../src/faiss-format/reader.js';
import type { DataType, SpaceType } from '../../src/vectors/types.js';
import { CHECKER_RELEASES, runChecker } from '../helpers/knn-checker.js';
import { KnnClient, hnswIndexParameters, knnBuildBody } from '../helpers/knn-client.js';
import {
  type VectorTable,
  clusteredBinary,
  clusteredFloat,
  distanceFunction,
  exactKnn,
  fromFloat16Array,
  normalizeRows,
  recallAtK,
  toFloat16Array,
  toInt8,
} from '../helpers/synthetic.js';
import { checkerLoads, releasesSending } from './releases.js';
import { type ConformanceResult, storageBytes } from './results.js';

export const POLICIES = ['compatible', 'reference', 'modern'] as const;

const K = 10;
const QUERIES = 40;
const COUNT = 2000;

export interface DataCase {
  dataType: DataType;
  space: SpaceType;
  dimension: number;
  count: number;
  /** Only under these policies (default: all). */
  policies?: readonly string[];
}

export const CASES: DataCase[] = [
  ...(['l2', 'innerproduct'] as const).flatMap((space) =>
    (['float', 'half_float', 'byte'] as const).map((dataType) => ({
      dataType,
      space,
      dimension: 32,
      count: COUNT,
    })),
  ),
  // Binary is always built and searched by Hamming distance; k-NN 3.2+ sends BQ fields with l2 or innerproduct.
  ...(['hamming', 'l2', 'innerproduct'] as const).map((space) => ({
    dataType: 'binary' as const,
    space,
    dimension: 256,
    count: COUNT,
  })),
  // A binary-quantized 1024-d float field at 32x: 32,768 bits (k-NN sends bytes x 8, beyond 16,000).
  { dataType: 'binary', space: 'l2', dimension: 32_768, count: 300, policies: ['compatible', 'reference'] },
];

/** The vectors of one case: the .knnvec bytes k-NN uploads, what the index holds, and held-out queries. */
interface DataSet {
  knnvec: Uint8Array;
  ids: Int32Array;
  base: VectorTable;
  queries: VectorTable;
  /** The base rows as stored in a flat storage k-NN would wire in (float32 values, or the binary codes). */
  flat: Uint8Array;
}

function dataSet(c: DataCase, seed: number): DataSet {
  const n = c.count;
  const d = c.dimension;
  const ids = Int32Array.from({ length: n }, (_, i) => 5 * i + 3 + (i % 4));
  const opts = { count: n + QUERIES, dimension: d, seed, clusters: 24, latentDimension: 12 };
  if (c.dataType === 'binary') {
    const bits = clusteredBinary(opts);
    const base = bits.slice(0, (n * d) / 8);
    return {
      knnvec: base,
      ids,
      base: { metric: 'hamming', dimension: d, data: base },
      queries: { metric: 'hamming', dimension: d, data: bits.slice((n * d) / 8) },
      flat: base,
    };
  }
  let all = clusteredFloat(opts);
  if (c.space === 'innerproduct') all = normalizeRows(all, d);
  let wire: Uint8Array;
  if (c.dataType === 'byte') {
    const int8 = toInt8(all);
    all = Float32Array.from(int8);
    wire = new Uint8Array(int8.buffer, 0, n * d);
  } else {
    // half_float travels as fp32; the index holds its fp16 values (so does Lucene for k-NN's wiring).
    if (c.dataType === 'half_float') all = fromFloat16Array(toFloat16Array(all));
    wire = new Uint8Array(all.buffer, 0, n * d * 4);
  }
  const metric = c.space === 'innerproduct' ? 'innerproduct' : 'l2';
  const base = all.slice(0, n * d);
  return {
    knnvec: wire.slice(),
    ids,
    base: { metric, dimension: d, data: base },
    queries: { metric, dimension: d, data: all.slice(n * d) },
    flat: new Uint8Array(base.buffer),
  };
}

/** The radius for radial search: the median over queries of the 10th neighbour's distance (~10 hits each). */
function radiusFor(set: DataSet): {
  radius: number;
  surely: (q: number, i: number) => boolean;
  maybe: (q: number, i: number) => boolean;
} {
  const truth = exactKnn(set.base, set.queries, K);
  const tenth = Array.from({ length: QUERIES }, (_, q) => truth.distances[q * K + K - 1]!).sort(
    (a, b) => a - b,
  );
  const r = tenth[QUERIES >> 1]!;
  const dist = distanceFunction(set.base, set.queries);
  // Faiss computes in float32: a neighbour within this of the radius may fall on either side of it.
  const eps = 1e-4 * Math.max(1, Math.abs(r));
  // distanceFunction is squared L2 or the negated inner product; Faiss's radius is squared L2 or a similarity floor.
  return {
    radius: set.base.metric === 'innerproduct' ? -r : r,
    surely: (q, i) => dist(q, i) < r - eps,
    maybe: (q, i) => dist(q, i) < r + eps,
  };
}

export interface Combo {
  policy: string;
  c: DataCase;
  skip: boolean;
  seed: number;
}

/** Every (policy, data case, skip_stored_vectors) the suite builds. */
export function combos(): Combo[] {
  return POLICIES.flatMap((policy) =>
    CASES.filter((c) => !c.policies || c.policies.includes(policy)).flatMap((c, i) =>
      [false, true].map((skip) => ({ policy, c, skip, seed: 100 + i })),
    ),
  );
}

export function comboName({ policy, c, skip }: Combo): string {
  return `${policy} ${c.dataType} ${c.space} d=${c.dimension}${skip ? ' skip_stored_vectors' : ''}`;
}

/**
 * Builds one combo through the service at `url` (whose INDEX_FORMAT_POLICY is combo.policy and whose local
 * store's container `bucket` is the folder `bucketDir`) and checks the file; returns one row per checker.
 */
export async function checkCombo(
  url: string,
  bucketDir: string,
  builder: 'cpu' | 'gpu',
  { policy, c, skip, seed }: Combo,
): Promise<ConformanceResult[]> {
  const name = comboName({ policy, c, skip, seed });
  const results: ConformanceResult[] = [];
  const folder = bucketDir;
  const set = dataSet(c, seed);
  const stem = name.replace(/[^a-z0-9]+/gi, '_');
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, `${stem}.knnvec`), set.knnvec);
  writeFileSync(path.join(folder, `${stem}.knndid`), new Uint8Array(set.ids.buffer));
  // An endpoint with a trailing slash, as a cluster may have it: k-NN then calls //_build and //_status/{id}.
  const client = new KnnClient({ endpoint: `${url}/` });
  const id = await client.build(
    knnBuildBody({
      container_name: 'bucket',
      vector_path: `${stem}.knnvec`,
      doc_id_path: `${stem}.knndid`,
      tenant_id: 'conformance',
      dimension: c.dimension,
      doc_count: c.count,
      data_type: c.dataType,
      index_parameters: hnswIndexParameters(c.space),
      skip_stored_vectors: skip,
    }),
  );
  const status = await client.poll(id, { intervalMs: 20, timeoutMs: 280_000 });
  assert.equal(status.task_status, 'COMPLETED_INDEX_BUILD', `${name}: ${status.error_message}`);
  const file = path.join(folder, status.file_name!);

  // The layout the policy table promises, as our own reader sees it.
  const expected = chooseFormat(
    { dataType: c.dataType, builder: builder, skipStoredVectors: skip },
    formatPolicy(policy),
  );
  const mine = readFaissIndexFile(file, { arrays: true });
  assert.equal(mine.index, expected.index, `${name}: layout`);
  assert.equal(mine.storage === 'null', skip, `${name}: null storage iff skip_stored_vectors`);
  assert.deepEqual(Array.from(mine.arrays!.ids), Array.from(set.ids), `${name}: id map = doc ids`);
  // CAGRA layouts carry a real entry node (max_level 0): radial search in k-NN 3.0-3.5 starts there.
  if (mine.cagra) assert.deepEqual([mine.hnsw.entryPoint >= 0, mine.hnsw.maxLevel], [true, 0], name);
  const layout = `${mine.index}/${mine.storage}`;

  // Searchable form: the file itself, or (skip) the file with the vectors wired in as k-NN does.
  const binary = c.dataType === 'binary';
  let searchFile = file;
  if (skip) {
    searchFile = `${file}.wired`;
    const storage = mine.sections.find((s) => s.name.startsWith('storage'))!;
    const bytes = readFileSync(file);
    const flat = storageBytes(set, c, binary);
    writeFileSync(
      searchFile,
      Buffer.concat([
        bytes.subarray(0, storage.offset),
        flat,
        bytes.subarray(storage.offset + storage.bytes),
      ]),
    );
  }
  const queryFile = path.join(folder, `${stem}.queries`);
  writeFileSync(queryFile, new Uint8Array(set.queries.data.buffer));
  const noQueries = path.join(folder, 'none.queries');
  writeFileSync(noQueries, new Uint8Array(0));
  const range = binary ? undefined : radiusFor(set);
  const truth = exactKnn(set.base, set.queries, K);
  const index = new Map(Array.from(set.ids, (docId, i) => [docId, i]));
  const sending = releasesSending(c.dataType, skip);

  for (const checker of CHECKER_RELEASES) {
    const sent = sending.filter((g) => g.checker === checker);
    const loads = checkerLoads(checker, mine.index, mine.storage === 'null' ? 'none' : 'flat');
    // Loading the file as written (no queries: a null storage cannot be searched before k-NN wires it).
    const load = await runChecker(checker, file, noQueries, { k: K, binary });
    const row: ConformanceResult = {
      key: `${policy}|${c.dataType}|${c.space}|${c.dimension}|${skip}|${checker}`,
      builder: builder,
      policy,
      dataType: c.dataType,
      space: c.space,
      dimension: c.dimension,
      skip,
      layout,
      checker,
      releases: sent.map((g) => g.releases),
      expectedLoads: loads,
      loads: load.exitCode === 0,
    };
    assert.equal(
      load.exitCode === 0,
      loads,
      `${name}: -${checker} ${loads ? 'should load' : 'should not load'} ${layout}: ${JSON.stringify(load.error)}`,
    );
    if (loads) {
      const s = load.structure!;
      assert.equal(s.inner_fourcc, mine.index, `${name}: -${checker} inner fourcc`);
      assert.deepEqual([s.ntotal, s.id_map_size, s.warnings], [c.count, c.count, []], `${name}: -${checker}`);
      assert.equal(s.storage_class === null, skip, `${name}: -${checker} storage`);
    }
    if (sent.length > 0 && loads) {
      const run = await runChecker(checker, searchFile, queryFile, {
        k: K,
        binary,
        ...(range ? { radius: range.radius } : {}),
      });
      assert.equal(run.exitCode, 0, `${name}: -${checker} search: ${JSON.stringify(run.error)}`);
      assert.equal(run.queries.length, QUERIES, `${name}: -${checker} answered every query`);
      const found = run.queries.map((q) =>
        q.labels.map((label) => {
          const i = index.get(label);
          assert.ok(i !== undefined, `${name}: -${checker} returned ${label}, not a doc id`);
          return i;
        }),
      );
      row.recall = recallAtK(set.base, set.queries, found, truth);
      assert.ok(row.recall >= 0.9, `${name}: -${checker} recall@10 ${row.recall} < 0.9`);
      if (range) {
        let hits = 0;
        let want = 0;
        run.queries.forEach((q, qi) => {
          for (let i = 0; i < c.count; i++) if (range.surely(qi, i)) want++;
          for (const label of q.range_labels!) {
            const i = index.get(label)!;
            assert.ok(range.maybe(qi, i), `${name}: -${checker} range result ${label} is outside the radius`);
            if (range.surely(qi, i)) hits++;
          }
        });
        row.rangeRecall = want > 0 ? hits / want : 1;
        assert.ok(
          row.rangeRecall >= 0.9,
          `${name}: -${checker} radial search found ${row.rangeRecall} < 0.9`,
        );
      }
    }
    results.push(row);
  }
  return results;
}
