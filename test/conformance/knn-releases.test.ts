// k-NN conformance: every file the service writes loads and searches in the k-NN releases that can send its
// request, judged by k-NN's own Faiss (the checkers of ../shared/knn-faiss, one per vendored Faiss build).
// For every data type x space type x skip_stored_vectors x format policy, through the real service (HTTP, worker
// processes, the local object store), each file is loaded by all three checkers and:
// * the checkers that load it are exactly those releases.ts says (the policy table);
// * for every release that can send the request: ids are the doc ids, recall@10 >= 0.9 against exact ground truth,
//   and radial search (float types) returns >= 90% of the true neighbours inside the radius and nothing outside.
// skip_stored_vectors files hold no vectors: k-NN wires Lucene's own vectors into their null storage before it
// searches (FaissFlatIndexFactory), so the search checks run on the file with the vectors spliced in the same way.
// Results go to build/conformance/results-<builder>.json; `npm run conformance-table` turns them into README's
// table. CONFORMANCE_BUILDER=gpu runs the same suite with the GPU builder (on the GPU machine).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chooseFormat, formatPolicy, FORMAT_POLICY_NAMES } from '../../src/faiss-format/policy.js';
import { readFaissIndexFile } from '../../src/faiss-format/reader.js';
import type { DataType, SpaceType } from '../../src/vectors/types.js';
import { CHECKER_RELEASES, checkerPath, runChecker } from '../helpers/knn-checker.js';
import { KnnClient } from '../helpers/knn-client.js';
import { type RealService, startRealService } from '../helpers/real-service.js';
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
import { type ConformanceResult, resultsFile, storageBytes } from './results.js';

const BUILDER = (process.env.CONFORMANCE_BUILDER ?? 'cpu') as 'cpu' | 'gpu';
const K = 10;
const QUERIES = 40;
const COUNT = 2000;

interface DataCase {
  dataType: DataType;
  space: SpaceType;
  dimension: number;
  count: number;
  /** Only under these policies (default: all). */
  policies?: readonly string[];
}

const CASES: DataCase[] = [
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

describe(`k-NN conformance (${BUILDER} builder): files load and search in k-NN's own Faiss`, () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'knn-conformance-'));
  const services = new Map<string, RealService>();
  const results: ConformanceResult[] = [];

  beforeAll(async () => {
    for (const release of CHECKER_RELEASES) checkerPath(release); // a clear error when the checkers are missing
    for (const policy of FORMAT_POLICY_NAMES) {
      services.set(
        policy,
        await startRealService(
          { kind: 'local', localRoot: path.join(tmp, policy) },
          { INDEX_FORMAT_POLICY: policy, BUILDER, MAX_WORKERS: '2', LOG_LEVEL: 'warn' },
          BUILDER,
        ),
      );
    }
  });

  afterAll(async () => {
    await Promise.all([...services.values()].map((s) => s.close()));
    rmSync(tmp, { recursive: true, force: true });
    if (results.length > 0) {
      const file = resultsFile(BUILDER);
      mkdirSync(path.dirname(file), { recursive: true });
      results.sort((a, b) => a.key.localeCompare(b.key));
      writeFileSync(file, `${JSON.stringify({ builder: BUILDER, results }, null, 1)}\n`);
    }
  });

  const combos = FORMAT_POLICY_NAMES.flatMap((policy) =>
    CASES.filter((c) => !c.policies || c.policies.includes(policy)).flatMap((c, i) =>
      [false, true].map((skip) => ({ policy, c, skip, seed: 100 + i })),
    ),
  );

  it.concurrent.each(
    combos.map(
      (x) =>
        [
          `${x.policy} ${x.c.dataType} ${x.c.space} d=${x.c.dimension}${x.skip ? ' skip_stored_vectors' : ''}`,
          x,
        ] as const,
    ),
  )('%s', { timeout: 300_000 }, async (name, { policy, c, skip, seed }) => {
    const svc = services.get(policy)!;
    const set = dataSet(c, seed);
    const folder = path.join(tmp, policy, 'bucket');
    const stem = name.replace(/[^a-z0-9]+/gi, '_');
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, `${stem}.knnvec`), set.knnvec);
    writeFileSync(path.join(folder, `${stem}.knndid`), new Uint8Array(set.ids.buffer));
    // An endpoint with a trailing slash, as a cluster may have it: k-NN then calls //_build and //_status/{id}.
    const client = new KnnClient({ endpoint: `${svc.url}/` });
    const id = await client.build({
      repository_type: 's3',
      container_name: 'bucket',
      vector_path: `${stem}.knnvec`,
      doc_id_path: `${stem}.knndid`,
      tenant_id: 'conformance',
      dimension: c.dimension,
      doc_count: c.count,
      data_type: c.dataType,
      engine: 'faiss',
      index_parameters: {
        space_type: c.space,
        algorithm: 'hnsw',
        algorithm_parameters: { ef_construction: 100, ef_search: 100, m: 16 },
      },
      ...(skip ? { skip_stored_vectors: true } : {}),
    });
    const status = await client.poll(id, { intervalMs: 20, timeoutMs: 280_000 });
    expect(status.error_message).toBeNull();
    expect(status.task_status).toBe('COMPLETED_INDEX_BUILD');
    const file = path.join(folder, status.file_name!);

    // The layout the policy table promises, as our own reader sees it.
    const expected = chooseFormat(
      { dataType: c.dataType, builder: BUILDER, skipStoredVectors: skip },
      formatPolicy(policy),
    );
    const mine = readFaissIndexFile(file, { arrays: true });
    expect(mine.index).toBe(expected.index);
    expect(mine.storage === 'null').toBe(skip);
    expect(Array.from(mine.arrays!.ids)).toEqual(Array.from(set.ids));
    if (mine.cagra) expect([mine.hnsw.entryPoint >= 0, mine.hnsw.maxLevel]).toEqual([true, 0]);
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
        builder: BUILDER,
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
      expect(load.exitCode === 0, `${checker} load: ${JSON.stringify(load.error)}`).toBe(loads);
      if (loads) {
        const s = load.structure!;
        expect(s.inner_fourcc).toBe(mine.index);
        expect([s.ntotal, s.id_map_size, s.warnings]).toEqual([c.count, c.count, []]);
        expect(s.storage_class === null).toBe(skip);
      }
      if (sent.length > 0 && loads) {
        const run = await runChecker(checker, searchFile, queryFile, {
          k: K,
          binary,
          ...(range ? { radius: range.radius } : {}),
        });
        expect(run.exitCode, JSON.stringify(run.error)).toBe(0);
        const found = run.queries.map((q) =>
          q.labels.map((label) => {
            const i = index.get(label);
            expect(i, `label ${label} is not a doc id`).toBeDefined();
            return i!;
          }),
        );
        row.recall = recallAtK(set.base, set.queries, found, truth);
        expect(row.recall, `${checker} recall@10`).toBeGreaterThanOrEqual(0.9);
        if (range) {
          let hits = 0;
          let want = 0;
          run.queries.forEach((q, qi) => {
            for (let i = 0; i < c.count; i++) if (range.surely(qi, i)) want++;
            for (const label of q.range_labels!) {
              const i = index.get(label)!;
              expect(range.maybe(qi, i), `range result ${label} is outside the radius`).toBe(true);
              if (range.surely(qi, i)) hits++;
            }
          });
          row.rangeRecall = want > 0 ? hits / want : 1;
          expect(row.rangeRecall, `${checker} range search recall`).toBeGreaterThanOrEqual(0.9);
        }
      }
      results.push(row);
    }
  });
});
