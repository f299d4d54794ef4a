// GPU build benchmark (run on the GPU machine by scripts/gpu-check.sh, bundled; or `npm run bench -- gpu-build`
// on any machine with a GPU): build time split by stage and peak GPU memory of the GPU builder, recall@10 at
// ef_search 100 of the index files our writer emits (searched by Faiss 1.15 reading them), against the same-run
// CPU baseline (Faiss 1.15 IndexHNSWFlat, M 16, efConstruction 100, all cores) and a naive exact GPU k-NN graph
// (PyTorch TF32 GEMM + topk) for the exact path.
//
//   gpu-build [--n 1000000] [--dims 128,768] [--variants flat,hier] [--work DIR] [--baseline] [--naive TILES]
//
// Data: bench/gpu/data.py (1,000 Gaussian clusters in a 64-d latent space, projected, plus noise; 1,000 held-out
// queries; exact ground truth). Variants: flat (base level only, IHNc), hier (hierarchical, IHNf), exact (exact
// k-NN path, IHNc), deg64 (graph degree 64, IHNc).
import {
  closeSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { GpuBuilder } from '../src/builders/gpu.js';
import type { BuildParams, GpuBuildOptions } from '../src/builders/types.js';
import { writeFaissIndex } from '../src/faiss-format/index.js';
import type { FaissFormat } from '../src/faiss-format/index.js';
import type { VectorSet } from '../src/vectors/types.js';
import { runPythonJson } from '../test/helpers/python.js';
import { printTable, writeResults, type Row } from './report.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '1000000' },
    dims: { type: 'string', default: '128,768' },
    variants: { type: 'string', default: 'flat,hier' },
    work: { type: 'string', default: '/tmp/knn-gpu-bench' },
    scripts: { type: 'string', default: path.join(import.meta.dirname, 'gpu') },
    baseline: { type: 'boolean', default: false },
    naive: { type: 'string', default: '' },
    /** Per-dimension variants, e.g. "128:flat,deg64;768:deg64" (overrides --dims and --variants). */
    plan: { type: 'string', default: '' },
    keep: { type: 'boolean', default: false },
  },
});

const PYTHON = process.env.PYTHON ?? 'python3';
const GIB = 2 ** 30;

interface Variant {
  hierarchical: boolean;
  gpu: GpuBuildOptions;
  format: FaissFormat;
}
const IHNC: FaissFormat = { index: 'IHNc', storage: 'flat' };
const IHNF: FaissFormat = { index: 'IHNf', storage: 'flat' };
const VARIANTS: Record<string, Variant> = {
  flat: { hierarchical: false, gpu: {}, format: IHNC },
  hier: { hierarchical: true, gpu: {}, format: IHNF },
  exact: { hierarchical: false, gpu: { knnAlgorithm: 'exact' }, format: IHNC },
  deg48: { hierarchical: false, gpu: { graphDegree: 48 }, format: IHNC },
  deg64: { hierarchical: false, gpu: { graphDegree: 64 }, format: IHNC },
  deg64k96: { hierarchical: false, gpu: { graphDegree: 64, intermediateDegree: 96 }, format: IHNC },
  deg64k128: { hierarchical: false, gpu: { graphDegree: 64, intermediateDegree: 128 }, format: IHNC },
  hier64: { hierarchical: true, gpu: { graphDegree: 64 }, format: IHNF },
  k128: { hierarchical: false, gpu: { intermediateDegree: 128 }, format: IHNC },
  noladder: { hierarchical: false, gpu: { tuning: { ladderLevels: 0 } }, format: IHNC },
  probes16: { hierarchical: false, gpu: { tuning: { ivfProbes: 16 } }, format: IHNC },
};

interface Meta {
  n: number;
  d: number;
  queries: number;
  generateSeconds: number;
  groundTruthSeconds: number;
}

interface Evaluation {
  faiss: string;
  files: Record<string, { recall: number; searchSeconds: number; readSeconds: number; type: string }>;
  baselineBuildSeconds?: number;
  baselineRecall?: number;
  baselineThreads?: number;
  naiveSeconds?: number;
  naiveTilesTimed?: number;
  naiveTiles?: number;
}

/** base.f32 as chunks of whole vectors, at most 1 GiB each (typed arrays stay far below Node's limits). */
function readBase(file: string, n: number, d: number): VectorSet {
  const perChunk = Math.max(1, Math.floor(2 ** 28 / d));
  const chunks: Float32Array[] = [];
  const fd = openSync(file, 'r');
  try {
    for (let row = 0; row < n; row += perChunk) {
      const rows = Math.min(perChunk, n - row);
      const a = new Float32Array(rows * d);
      const bytes = readSync(fd, new Uint8Array(a.buffer), 0, a.byteLength, row * d * 4);
      if (bytes !== a.byteLength) throw new Error(`${file}: short read at row ${row}`);
      chunks.push(a);
    }
  } finally {
    closeSync(fd);
  }
  return { dataType: 'float', dimension: d, count: n, chunks };
}

async function dataset(n: number, d: number): Promise<{ dir: string; meta: Meta }> {
  const dir = path.join(args.work, `${n}x${d}`);
  const metaFile = path.join(dir, 'meta.json');
  if (!existsSync(metaFile)) {
    mkdirSync(dir, { recursive: true });
    await runPythonJson(PYTHON, path.join(args.scripts, 'data.py'), [dir, String(n), String(d)]);
  }
  return { dir, meta: JSON.parse(readFileSync(metaFile, 'utf8')) as Meta };
}

// Sub-stage timings on stderr (the builder reads no environment: tuning is an option).
const gpuBuilder = new GpuBuilder({ seed: 1234, tuning: { verbose: true } });
const params = (v: Variant): BuildParams => ({
  spaceType: 'l2',
  m: 16,
  efConstruction: 100,
  efSearch: 100,
  hierarchical: v.hierarchical,
  gpu: v.gpu,
});

/** CUDA context, cuBLAS handle and module loading happen once per process: timed apart from the builds. */
async function warmUp(): Promise<number> {
  const d = 32;
  const x = Float32Array.from({ length: 2000 * d }, (_, i) => Math.sin(i * 0.37));
  const t = performance.now();
  await gpuBuilder.build(
    { dataType: 'float', dimension: d, count: 2000, chunks: [x] },
    params(VARIANTS.flat!),
  );
  return (performance.now() - t) / 1000;
}

async function benchDataset(n: number, d: number, variants: string[], coldStart: number): Promise<Row[]> {
  const { dir, meta } = await dataset(n, d);
  const vectors = readBase(path.join(dir, 'base.f32'), n, d);
  const ids = Int32Array.from({ length: n }, (_, i) => i);
  const builds: Row[] = [];
  for (const name of variants) {
    const v = VARIANTS[name];
    if (!v) throw new Error(`unknown variant ${name} (one of ${Object.keys(VARIANTS).join(', ')})`);
    const t = performance.now();
    const built = await gpuBuilder.build(vectors, params(v));
    const seconds = (performance.now() - t) / 1000;
    const file = `${name}.faiss`;
    const tw = performance.now();
    await writeFaissIndex(
      {
        format: v.format,
        graph: built.graph,
        vectors,
        ids,
        spaceType: 'l2',
        efConstruction: 100,
        efSearch: 100,
      },
      createWriteStream(path.join(dir, file)),
    );
    const s = built.stageSeconds;
    builds.push({
      data: `${n / 1e6}M x ${d}`,
      builder: `gpu ${name} (${v.format.index})`,
      file,
      buildSeconds: seconds,
      upload: s.upload ?? null,
      knn: s.knn ?? null,
      ladder: s.ladder ?? null,
      prune: s.prune ?? null,
      reverse: s.reverse ?? null,
      hierarchy: s.hierarchy ?? null,
      download: s.download ?? null,
      peakGpuGiB: built.peakDeviceBytes / GIB,
      writeSeconds: (performance.now() - tw) / 1000,
      coldStartSeconds: coldStart,
    });
    console.error(`[gpu-build] ${n}x${d} ${name}: ${seconds.toFixed(3)} s ${JSON.stringify(s)}`);
  }
  writeFileSync(path.join(dir, 'builds.json'), JSON.stringify(builds));
  const evalArgs = [
    dir,
    ...(args.baseline ? ['--baseline'] : []),
    ...(args.naive ? ['--naive', args.naive] : []),
  ];
  const ev = await runPythonJson<Evaluation>(PYTHON, path.join(args.scripts, 'evaluate.py'), evalArgs);
  const rows: Row[] = builds.map((b) => ({ ...b, recall10: ev.files[String(b.file)]?.recall ?? null }));
  if (ev.baselineBuildSeconds !== undefined) {
    rows.push({
      data: `${n / 1e6}M x ${d}`,
      builder: `cpu faiss ${ev.faiss} HNSWFlat (${ev.baselineThreads} thr)`,
      file: '',
      buildSeconds: ev.baselineBuildSeconds,
      recall10: ev.baselineRecall ?? null,
    });
  }
  if (ev.naiveSeconds !== undefined) {
    rows.push({
      data: `${n / 1e6}M x ${d}`,
      builder: `naive torch TF32 GEMM+topk k=64 (${ev.naiveTilesTimed}/${ev.naiveTiles} tiles timed)`,
      file: '',
      knn: ev.naiveSeconds,
    });
  }
  if (!args.keep) for (const b of builds) rmSync(path.join(dir, String(b.file)), { force: true });
  console.error(
    `[gpu-build] data: generate ${meta.generateSeconds.toFixed(1)} s, ground truth ${meta.groundTruthSeconds.toFixed(1)} s`,
  );
  return rows;
}

const plan: [number, string[]][] = args.plan
  ? args.plan.split(';').map((p) => {
      const [d, v] = p.split(':');
      return [Number(d), (v ?? '').split(',')];
    })
  : args.dims.split(',').map((d) => [Number(d), args.variants.split(',')]);
const coldStart = await warmUp();
const rows: Row[] = [];
for (const [d, variants] of plan) rows.push(...(await benchDataset(Number(args.n), d, variants, coldStart)));
const columns = [
  'data',
  'builder',
  'buildSeconds',
  'upload',
  'knn',
  'ladder',
  'prune',
  'reverse',
  'hierarchy',
  'download',
  'peakGpuGiB',
  'recall10',
];
printTable(
  'GPU build (m 16, ef_construction 100; recall@10 at ef_search 100 by Faiss reading the written file)',
  rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? null]))),
);
console.log(
  `\nCUDA context + cuBLAS + first build of 2,000 vectors (once per process): ${coldStart.toFixed(3)} s`,
);
for (const r of rows) {
  const naive = r.builder !== undefined && String(r.builder).startsWith('naive') ? Number(r.knn) : undefined;
  const exact = rows.find((x) => x.data === r.data && String(x.builder).startsWith('gpu exact'));
  if (naive !== undefined && exact) {
    console.log(
      `${r.data}: exact k-NN stage ${Number(exact.knn).toFixed(2)} s vs naive ${naive.toFixed(2)} s: ${(naive / Number(exact.knn)).toFixed(1)}x`,
    );
  }
}
writeResults('gpu-build', { args, coldStartSeconds: coldStart, rows });
