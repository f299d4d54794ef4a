// CPU builder vs faiss-cpu 1.15 HNSW, side by side in one run: for each data set and thread count, our CpuBuilder
// (in a child Node process) and Faiss 1.15's IndexHNSWFlat / IndexBinaryHNSW (in a Python process) build the
// same vectors with the same M, ef_construction and threads; Faiss 1.15 then loads both index files and scores
// recall@10 at ef_search 100 against exact k-NN of held-out queries. Prints build time, CPU time, recall and peak
// RSS of both, and the speed ratio (Faiss time / ours: > 1 means we are faster); saves bench/results/cpu.json.
//
//   npm run bench -- cpu [--sets 128x100000,768x50000,bin256x20000] [--threads 1,all] [--queries 1000]
//                        [--m 16] [--ef-construction 100] [--ef-search 100] [--space l2|innerproduct]
//
// --sets: DxN items (N vectors of D floats, clustered); binDxN: N codes of D bits (hamming). 1m = 1000000, 100k.
// --threads: a list; `all` = every core. Each build runs in its own process, so the peak RSS columns are each
// build's own (peak_mib: the process's high-water mark; build_mib: that minus what it held before building,
// i.e. the builder's memory beyond the loaded vectors).
// On a shared machine wall times are noisy: compare the ratio (both measured in the same run), and cpu_s.
// Needs .venv-faiss (scripts/setup.sh --test) or PYTHON naming a python with faiss 1.15 and numpy.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { CpuBuilder } from '../src/builders/cpu.js';
import { loadAddon } from '../src/builders/native.js';
import type { BuildParams } from '../src/builders/types.js';
import { chooseFormat, writeFaissIndex } from '../src/faiss-format/index.js';
import type { DataType, VectorSet } from '../src/vectors/types.js';
import { FAISS_115_PYTHON, REPO_ROOT, runPythonJson } from '../test/helpers/python.js';
import { clusteredBinary, clusteredFloat, normalizeRows, splitRows } from '../test/helpers/synthetic.js';
import { printTable, writeResults, type Row } from './report.js';

const K = 10;

interface Meta {
  n: number;
  d: number;
  queries: number;
  k: number;
  binary: boolean;
  metric: 'l2' | 'innerproduct' | 'hamming';
  M: number;
  efConstruction: number;
  efSearch: number;
}

/** What each build process reports. */
interface BuildReport {
  buildSeconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  rssBeforeBytes: number;
}

interface FaissReport extends BuildReport {
  faiss: string;
  oursRecall: number;
  faissRecall: number;
}

const vectorFile = (dir: string, name: string) => path.join(dir, name);

// --- child: one build with our CpuBuilder, index file written as the service writes it -------------------------
async function child(dir: string, threads: number): Promise<void> {
  const meta = JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Meta;
  const bytes = readFileSync(vectorFile(dir, 'base.bin'));
  const dataType: DataType = meta.binary ? 'binary' : 'float';
  const chunk = meta.binary
    ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const vectors: VectorSet = { dataType, dimension: meta.d, count: meta.n, chunks: [chunk] };
  const params: BuildParams = {
    spaceType: meta.metric,
    m: meta.M,
    efConstruction: meta.efConstruction,
    efSearch: meta.efSearch,
    hierarchical: true,
    threads,
  };
  loadAddon(); // its code and libraries are the process's, not the build's
  const rssBeforeBytes = process.memoryUsage().rss;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const built = await new CpuBuilder().build(vectors, params);
  const buildSeconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  await writeFaissIndex(
    {
      format: chooseFormat({ dataType, builder: 'cpu' }),
      graph: built.graph,
      vectors,
      ids: Int32Array.from({ length: meta.n }, (_, i) => i),
      spaceType: meta.metric,
      efConstruction: meta.efConstruction,
      efSearch: meta.efSearch,
    },
    createWriteStream(path.join(dir, 'ours.faiss')),
  );
  const report: BuildReport = {
    buildSeconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    peakRssBytes,
    rssBeforeBytes,
  };
  process.stdout.write(JSON.stringify(report));
}

function runChild(dir: string, threads: number): Promise<BuildReport> {
  // The same script in a fresh process (with tsx's loader when run from source), so its peak RSS is this build's.
  const args = [...process.execArgv, import.meta.filename, '--child', dir, String(threads)];
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as BuildReport) : reject(new Error(`our build exited ${code}`)),
    );
  });
}

// --- parent ---------------------------------------------------------------------------------------------------
interface DataSet {
  name: string;
  binary: boolean;
  d: number;
  n: number;
}

function parseCount(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(s);
  if (!m) throw new Error(`bad vector count '${s}'`);
  const unit = { '': 1, k: 1e3, m: 1e6 }[m[2]!.toLowerCase() as '' | 'k' | 'm'];
  return Math.round(Number(m[1]) * unit);
}

function parseSets(spec: string): DataSet[] {
  return spec.split(',').map((item) => {
    const m = /^(bin)?(\d+)x(\w+(?:\.\d+)?)$/i.exec(item.trim());
    if (!m) throw new Error(`--sets: '${item}' is not DxN or binDxN`);
    const binary = !!m[1];
    const d = Number(m[2]);
    if (binary && d % 8 !== 0) throw new Error(`--sets: binary dimension ${d} is not a multiple of 8`);
    return { name: item.trim(), binary, d, n: parseCount(m[3]!) };
  });
}

function toFile(file: string, a: ArrayBufferView): void {
  writeFileSync(file, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

/** Writes base.bin, queries.bin and meta.json for one data set (queries drawn with the base, held out). */
function prepare(
  dir: string,
  set: DataSet,
  o: { queries: number; space: string; params: BuildParams },
): Meta {
  mkdirSync(dir, { recursive: true });
  const total = set.n + o.queries;
  let base: ArrayBufferView;
  let queries: ArrayBufferView;
  if (set.binary) {
    [base, queries] = splitRows(
      clusteredBinary({ count: total, dimension: set.d, seed: 2024 + set.d }),
      set.d / 8,
      set.n,
    );
  } else {
    const all = clusteredFloat({ count: total, dimension: set.d, seed: 2024 + set.d });
    if (o.space === 'innerproduct') normalizeRows(all, set.d);
    [base, queries] = splitRows(all, set.d, set.n);
  }
  toFile(vectorFile(dir, 'base.bin'), base);
  toFile(vectorFile(dir, 'queries.bin'), queries);
  const meta: Meta = {
    n: set.n,
    d: set.d,
    queries: o.queries,
    k: K,
    binary: set.binary,
    metric: set.binary ? 'hamming' : o.params.spaceType,
    M: o.params.m,
    efConstruction: o.params.efConstruction,
    efSearch: o.params.efSearch,
  };
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta));
  return meta;
}

const MiB = 2 ** 20;

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      sets: { type: 'string', default: '128x100000,768x50000,bin256x20000' },
      threads: { type: 'string', default: '1,all' },
      queries: { type: 'string', default: '1000' },
      m: { type: 'string', default: '16' },
      'ef-construction': { type: 'string', default: '100' },
      'ef-search': { type: 'string', default: '100' },
      space: { type: 'string', default: 'l2' },
    },
  });
  const python = process.env.PYTHON ?? (existsSync(FAISS_115_PYTHON) ? FAISS_115_PYTHON : 'python3');
  const script = path.join(import.meta.dirname, 'cpu/faiss_bench.py');
  const allCores = os.availableParallelism();
  const threadList = [
    ...new Set(args.threads.split(',').map((t) => (t.trim() === 'all' ? allCores : Number(t)))),
  ];
  const params: BuildParams = {
    spaceType: args.space === 'innerproduct' ? 'innerproduct' : 'l2',
    m: Number(args.m),
    efConstruction: Number(args['ef-construction']),
    efSearch: Number(args['ef-search']),
    hierarchical: true,
  };
  const rows: Row[] = [];
  for (const set of parseSets(args.sets)) {
    const dir = path.join(REPO_ROOT, '.tmp/bench-cpu', set.name);
    rmSync(dir, { recursive: true, force: true });
    const meta = prepare(dir, set, { queries: Number(args.queries), space: args.space, params });
    for (const threads of threadList) {
      process.stderr.write(`${set.name}, ${threads} thread(s): ours... `);
      const ours = await runChild(dir, threads);
      process.stderr.write(`${ours.buildSeconds.toFixed(1)} s; faiss 1.15... `);
      const faiss = await runPythonJson<FaissReport>(python, script, [dir, String(threads)]);
      process.stderr.write(`${faiss.buildSeconds.toFixed(1)} s\n`);
      rows.push({
        set: set.name,
        space: meta.metric,
        threads,
        ours_s: ours.buildSeconds,
        faiss_s: faiss.buildSeconds,
        speedup: faiss.buildSeconds / ours.buildSeconds,
        ours_cpu_s: ours.cpuSeconds,
        faiss_cpu_s: faiss.cpuSeconds,
        cpu_ratio: faiss.cpuSeconds / ours.cpuSeconds,
        [`ours_recall@${K}`]: faiss.oursRecall,
        [`faiss_recall@${K}`]: faiss.faissRecall,
        ours_peak_mib: ours.peakRssBytes / MiB,
        faiss_peak_mib: faiss.peakRssBytes / MiB,
        ours_build_mib: (ours.peakRssBytes - ours.rssBeforeBytes) / MiB,
        faiss_build_mib: (faiss.peakRssBytes - faiss.rssBeforeBytes) / MiB,
        judged_by: `faiss ${faiss.faiss}`,
      });
    }
    rmSync(dir, { recursive: true, force: true });
  }
  printTable(
    `CPU build: ours vs faiss-cpu HNSW (m ${params.m}, ef_construction ${params.efConstruction}), ` +
      `recall@${K} at ef_search ${params.efSearch}; speedup = faiss time / ours`,
    rows,
  );
  writeResults('cpu', rows);
}

if (process.argv.includes('--child')) {
  const at = process.argv.indexOf('--child');
  await child(process.argv[at + 1]!, Number(process.argv[at + 2]));
} else {
  await main();
}
