// CPU build benchmark: build time of the CPU builder, and recall@10 of the index file the service writes for it,
// searched by Faiss 1.15 (ef_search 100) against exact k-NN of held-out queries, on clustered synthetic data.
//
//   npm run bench -- cpu-build [--n 100000] [--dims 128,768] [--queries 1000] [--m 16] [--ef-construction 100]
//                              [--ef-search 100] [--space l2|innerproduct] [--threads N] [--baseline]
//
// --baseline also times Faiss 1.15 (pip wheel, SIMD-dispatched) building the same index from Python.
// *_cpu_s columns are CPU seconds (all threads): a fairer comparison than wall time on a busy machine.
// Needs .venv-faiss (scripts/setup.sh --test).
import { createWriteStream, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { CpuBuilder } from '../src/builders/cpu.js';
import type { BuildParams } from '../src/builders/types.js';
import { chooseFormat, type HnswGraph, writeFaissIndex } from '../src/faiss-format/index.js';
import type { VectorSet } from '../src/vectors/types.js';
import { FAISS_115_PYTHON, REPO_ROOT, runPythonJson } from '../test/helpers/python.js';
import { clusteredFloat, normalizeRows, splitRows } from '../test/helpers/synthetic.js';
import { printTable, writeResults, type Row } from './report.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    dims: { type: 'string', default: '128,768' },
    queries: { type: 'string', default: '1000' },
    m: { type: 'string', default: '16' },
    'ef-construction': { type: 'string', default: '100' },
    'ef-search': { type: 'string', default: '100' },
    space: { type: 'string', default: 'l2' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    baseline: { type: 'boolean', default: false },
  },
});

const K = 10;
const SEARCH_SCRIPT = path.join(import.meta.dirname, 'cpu-build/search_faiss115.py');
const WORK = path.join(REPO_ROOT, '.tmp/bench-cpu-build');

interface FaissSearch {
  faiss: string;
  recall: number;
  searchSeconds: number;
  groundTruthSeconds: number;
  baselineBuildSeconds?: number;
  baselineBuildCpuSeconds?: number;
  baselineRecall?: number;
}

function toFile(file: string, a: ArrayBufferView): void {
  writeFileSync(file, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

/** Base and held-out queries drawn together, so the queries fall in the base's clusters. */
function dataset(n: number, queries: number, d: number, space: string): [Float32Array, Float32Array] {
  const all = clusteredFloat({ count: n + queries, dimension: d, seed: 2024 + d });
  if (space === 'innerproduct') normalizeRows(all, d);
  return splitRows(all, d, n);
}

/** index.faiss as the service writes it for a CPU float graph (default policy: IxMp over IHNf), ids 0..n-1. */
async function writeIndexFile(file: string, graph: HnswGraph, vectors: VectorSet, params: BuildParams) {
  const input = {
    format: chooseFormat({ dataType: 'float', builder: 'cpu' }),
    graph,
    vectors,
    ids: Int32Array.from({ length: vectors.count }, (_, i) => i),
    spaceType: params.spaceType,
    efConstruction: params.efConstruction,
    efSearch: params.efSearch,
  };
  await writeFaissIndex(input, createWriteStream(file));
  return { fourcc: input.format.index, bytes: statSync(file).size };
}

async function benchOne(d: number): Promise<Row> {
  const n = Number(args.n);
  const nq = Number(args.queries);
  const params: BuildParams = {
    spaceType: args.space === 'innerproduct' ? 'innerproduct' : 'l2',
    m: Number(args.m),
    efConstruction: Number(args['ef-construction']),
    efSearch: Number(args['ef-search']),
    hierarchical: true,
    threads: Number(args.threads),
  };
  const dir = path.join(WORK, `${n}x${d}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  const [base, queries] = dataset(n, nq, d, params.spaceType);
  const vectors: VectorSet = { dataType: 'float', dimension: d, count: n, chunks: [base] };
  let shown = 0;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const built = await new CpuBuilder().build(vectors, params, (f) => {
    if (f >= shown + 0.1) process.stderr.write(`  ${n} x ${d}: ${Math.round((shown = f) * 100)}%\r`);
  });
  const buildSeconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const buildCpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stderr.write('\n');

  const file = await writeIndexFile(path.join(dir, 'index.faiss'), built.graph, vectors, params);
  toFile(path.join(dir, 'base.f32'), base);
  toFile(path.join(dir, 'queries.f32'), queries);
  const meta = { n, d, queries: nq, k: K, metric: params.spaceType, M: params.m, ...params };
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta));
  const search = await runPythonJson<FaissSearch>(FAISS_115_PYTHON, SEARCH_SCRIPT, [
    dir,
    ...(args.baseline ? ['--baseline'] : []),
  ]);
  rmSync(dir, { recursive: true, force: true });

  return {
    n,
    d,
    space: params.spaceType,
    m: params.m,
    ef_construction: params.efConstruction,
    threads: params.threads!,
    build_s: buildSeconds,
    build_cpu_s: buildCpuSeconds,
    vectors_per_s: Math.round(n / buildSeconds),
    file: file.fourcc,
    file_mib: file.bytes / 2 ** 20,
    [`recall@${K}`]: search.recall,
    search_ms_per_query: (search.searchSeconds * 1000) / nq,
    ...(args.baseline
      ? {
          faiss115_build_s: search.baselineBuildSeconds ?? null,
          faiss115_build_cpu_s: search.baselineBuildCpuSeconds ?? null,
          faiss115_recall: search.baselineRecall ?? null,
        }
      : {}),
    searched_by: `faiss ${search.faiss}`,
  };
}

const rows: Row[] = [];
for (const d of args.dims.split(',').map(Number)) rows.push(await benchOne(d));
printTable(`CPU build (Faiss HNSW), recall@${K} at ef_search ${args['ef-search']}`, rows);
writeResults('cpu-build', rows);
