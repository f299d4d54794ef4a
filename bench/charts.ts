// `npm run bench -- report`: the recorded benchmark results as charts (Vega-Lite, rendered to SVG in Node, no
// browser or canvas) in one HTML page: GPU vs CPU build time and recall, the per-phase time of whole jobs
// through the service, and the bytes each job sent vs those the store copied itself.
//
//   npm run bench -- report [--out bench/charts] [--gpu bench/gpu/results-h200-2026-11-27.json]
//                           [--e2e bench/e2e/*.json,bench/results/e2e*.json]
//
// Inputs are the JSON files the benchmarks write (bench/results/, or recorded copies under bench/gpu and
// bench/e2e); the charts are SVG files beside index.html, which README.md embeds.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

const here = import.meta.dirname;
const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(here, 'charts') },
    gpu: { type: 'string', default: path.join(here, 'gpu/results-h200-2026-11-27.json') },
    e2e: { type: 'string', default: '' },
  },
});

type Json = Record<string, unknown>;
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Json;

/** The e2e result files: given ones, else the recorded ones in bench/e2e and fresh ones in bench/results. */
function e2eFiles(): string[] {
  if (args.e2e) return args.e2e.split(',').filter(Boolean);
  const list = (dir: string, match: (f: string) => boolean) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter(match)
          .map((f) => path.join(dir, f))
      : [];
  return [
    ...list(path.join(here, 'e2e'), (f) => f.endsWith('.json')),
    ...list(path.join(here, 'results'), (f) => /^e2e.*\.json$/.test(f)),
  ];
}

interface BuildRow {
  data: string;
  builder: string;
  seconds: number;
  recall: number | null;
}

function buildRows(file: string): BuildRow[] {
  const rows = ((readJson(file).results as Json).rows ?? []) as Json[];
  return rows
    .filter((r) => typeof r.buildSeconds === 'number')
    .map((r) => ({
      data: String(r.data),
      builder: String(r.builder)
        .replace(/ \(.*$/, '')
        .replace('cpu faiss 1.15.1 HNSWFlat', 'CPU Faiss 1.15.1'),
      seconds: r.buildSeconds as number,
      recall: typeof r.recall10 === 'number' ? r.recall10 : null,
    }));
}

interface JobRow {
  job: string;
  source: string;
  phase: string;
  seconds: number;
}
interface BytesRow {
  job: string;
  source: string;
  kind: string;
  MiB: number;
}

function jobRows(files: string[]): { phases: JobRow[]; bytes: BytesRow[] } {
  const phases: JobRow[] = [];
  const bytes: BytesRow[] = [];
  for (const file of files) {
    const json = readJson(file);
    const results = json.results as Json;
    const source = String(
      results.label ?? `${path.basename(file, '.json')} (${String(results.store ?? 's3')})`,
    );
    for (const r of (results.rows ?? []) as Json[]) {
      const copy = r.upload_path ? ` ${String(r.upload_path)}` : '';
      const job = `${String(r.type ?? 'float')} ${Number(r.vectors) / 1e6}M x ${String(r.dimension)}${copy}`;
      for (const phase of ['download', 'build', 'upload'] as const) {
        phases.push({ job, source, phase, seconds: Number(r[`${phase}_s`] ?? 0) });
      }
      if (typeof r.MiB_sent === 'number' && typeof r.index_MiB === 'number') {
        bytes.push({ job, source, kind: 'sent by the job', MiB: r.MiB_sent });
        bytes.push({ job, source, kind: 'copied by the store', MiB: r.index_MiB - r.MiB_sent });
      }
    }
  }
  return { phases, bytes };
}

async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

const charts: { file: string; title: string; spec: TopLevelSpec }[] = [];
const width = 520;

/** A chart of horizontal bars; with `bySource`, one panel per results file, each with its own jobs. */
function barChart(
  file: string,
  title: string,
  values: object[],
  encoding: Record<string, unknown>,
  bySource = false,
): void {
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    width,
    mark: 'bar',
    encoding: bySource ? { ...encoding, row: SOURCE_PANELS } : encoding,
    ...(bySource ? { resolve: { scale: { y: 'independent' } } } : {}),
  };
  charts.push({ file, title, spec: spec as TopLevelSpec });
}
const SOURCE_PANELS = {
  field: 'source',
  type: 'nominal',
  title: null,
  header: { labelOrient: 'top', labelAnchor: 'start', labelAngle: 0, labelFontWeight: 'bold' },
};
/** Stacked bars per job (`x` quantities, coloured by `color`), for the per-source panels. */
const stackedPerJob = (x: string, color: Record<string, unknown>) => ({
  y: { field: 'job', type: 'nominal', title: null },
  x: { field: x, type: 'quantitative', stack: 'zero', title: x },
  color,
});
/** One bar per builder, a panel per data set. */
const byBuilder = (x: Record<string, unknown>) => ({
  y: { field: 'builder', type: 'nominal', title: null },
  x,
  color: { field: 'builder', type: 'nominal', legend: null },
  row: { field: 'data', type: 'nominal', title: null },
});

if (existsSync(args.gpu)) {
  const rows = buildRows(args.gpu);
  barChart(
    'build-time.svg',
    'Build time, 1M vectors: GPU vs CPU Faiss (H200 host, 16 cores)',
    rows,
    byBuilder({
      field: 'seconds',
      type: 'quantitative',
      scale: { type: 'log' },
      title: 'build seconds (log)',
    }),
  );
  barChart(
    'recall.svg',
    'Recall@10 at ef_search 100 (Faiss 1.15 reading our files)',
    rows.filter((r) => r.recall !== null),
    byBuilder({ field: 'recall', type: 'quantitative', scale: { domain: [0.9, 1] }, title: 'recall@10' }),
  );
}

const files = e2eFiles();
const { phases, bytes } = jobRows(files);
if (phases.length > 0) {
  barChart(
    'phases.svg',
    'Whole jobs through the service: seconds per phase',
    phases,
    {
      ...stackedPerJob('seconds', { field: 'phase', type: 'nominal', sort: ['download', 'build', 'upload'] }),
      order: { field: 'phase', sort: 'ascending' },
    },
    true,
  );
}
if (bytes.length > 0) {
  barChart(
    'bytes.svg',
    'The index: bytes the job sent vs bytes the store copied from the .knnvec',
    bytes,
    stackedPerJob('MiB', { field: 'kind', type: 'nominal', title: null }),
    true,
  );
}

mkdirSync(args.out, { recursive: true });
const sections: string[] = [];
for (const chart of charts) {
  const image = await svg(chart.spec);
  writeFileSync(path.join(args.out, chart.file), image);
  sections.push(`<section><h2>${chart.title}</h2>\n${image}</section>`);
}
const sources = [args.gpu, ...files]
  .filter((f) => existsSync(f))
  .map((f) => `<li>${path.relative(process.cwd(), f)}</li>`);
writeFileSync(
  path.join(args.out, 'index.html'),
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>knn-remote-index-builder benchmarks</title>
<style>body{font-family:sans-serif;max-width:900px;margin:2em auto}section{margin-bottom:2em}</style></head>
<body><h1>Benchmarks</h1>
${sections.join('\n')}
<p>From:</p><ul>${sources.join('')}</ul>
</body></html>
`,
);
console.log(`${charts.length} charts: ${path.join(args.out, 'index.html')}`);
for (const chart of charts) console.log(`  ${path.join(args.out, chart.file)}  ${chart.title}`);
