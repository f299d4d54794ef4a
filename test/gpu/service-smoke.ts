// The whole service on the GPU machine: the real server (bundled src/main.ts) with BUILDER=gpu and the local
// store, its worker processes, the GPU lease, the writer; driven by the strict k-NN client; every file then read
// by Faiss 1.15 for its id map and recall@10. scripts/gpu-check.sh runs the bundle (step `service`).
//   node service-smoke.mjs <bundled main.js> <python with faiss>
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { KnnClient, hnswIndexParameters, knnBuildBody } from '../helpers/knn-client.js';
import { runPythonJson } from '../helpers/python.js';
import { clusteredBinary, clusteredFloat, normalizeRows, toInt8 } from '../helpers/synthetic.js';

const [mainJs, python = 'python3'] = process.argv.slice(2);
if (!mainJs) throw new Error('usage: service-smoke.mjs <bundled main.js> [python]');
const root = path.join(os.tmpdir(), `knn-gpu-service-${process.pid}`);
// Run from the repository root (as scripts/gpu-check.sh does).
const checkScript = path.resolve('test/python/faiss_check.py');
const port = 10_000 + (process.pid % 20_000);
// For a dry run elsewhere: SMOKE_BUILDER=cpu SMOKE_SCALE=0.02 (fewer vectors).
const builder = process.env.SMOKE_BUILDER ?? 'gpu';
const scale = Number(process.env.SMOKE_SCALE ?? '1');

interface Case {
  dataType: 'float' | 'half_float' | 'byte' | 'binary';
  space: 'l2' | 'innerproduct' | 'hamming';
  dimension: number;
  count: number;
}
const fullCases: Case[] = [
  { dataType: 'float', space: 'l2', dimension: 768, count: 200_000 },
  { dataType: 'float', space: 'innerproduct', dimension: 128, count: 100_000 },
  { dataType: 'half_float', space: 'l2', dimension: 128, count: 100_000 },
  { dataType: 'byte', space: 'l2', dimension: 128, count: 100_000 },
  { dataType: 'binary', space: 'hamming', dimension: 256, count: 100_000 },
];
const cases = fullCases.map((c) => ({ ...c, count: Math.max(500, Math.round(c.count * scale)) }));

function knnvec(c: Case): Uint8Array {
  const o = { count: c.count, dimension: c.dimension, seed: 7, clusters: 200, latentDimension: 32 };
  if (c.dataType === 'binary') return clusteredBinary(o);
  const x = clusteredFloat(o);
  if (c.dataType === 'byte') return new Uint8Array(toInt8(x).buffer);
  if (c.space === 'innerproduct') normalizeRows(x, c.dimension);
  return new Uint8Array(x.buffer);
}

mkdirSync(path.join(root, 'bucket'), { recursive: true });
const service = spawn(process.execPath, [mainJs], {
  env: {
    ...process.env,
    BUILDER: builder,
    OBJECT_STORE: 'local',
    LOCAL_STORE_ROOT: root,
    PORT: String(port),
    HOST: '127.0.0.1',
    MAX_WORKERS: '2',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const client = new KnnClient({ endpoint: `http://127.0.0.1:${port}` });
const rows: string[] = [];
let failures = 0;
try {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/_heart_beat`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  // Submit every build first (they queue and share the GPU), then poll each with a 0 s interval as k-NN does.
  const jobs = [];
  for (const [i, c] of cases.entries()) {
    const name = `seg${i}_${c.dataType}_${c.space}`;
    const ids = Int32Array.from({ length: c.count }, (_, j) => 5 * j + 3);
    writeFileSync(path.join(root, 'bucket', `${name}.knnvec`), knnvec(c));
    writeFileSync(path.join(root, 'bucket', `${name}.knndid`), new Uint8Array(ids.buffer));
    const t0 = performance.now();
    const id = await client.build(
      knnBuildBody({
        container_name: 'bucket',
        vector_path: `${name}.knnvec`,
        doc_id_path: `${name}.knndid`,
        tenant_id: 'gpu-smoke',
        dimension: c.dimension,
        doc_count: c.count,
        data_type: c.dataType,
        index_parameters: hnswIndexParameters(c.space),
      }),
    );
    jobs.push({ c, name, id, t0 });
  }
  for (const { c, name, id, t0 } of jobs) {
    const s = await client.poll(id, { intervalMs: 0, timeoutMs: 600_000 });
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    if (s.task_status !== 'COMPLETED_INDEX_BUILD') {
      failures++;
      rows.push(`${name}: ${s.task_status} ${s.error_message}`);
      continue;
    }
    const file = path.join(root, 'bucket', s.file_name!);
    const [info, recall] = await runPythonJson<
      [
        { ok: boolean; result?: { ids: number[]; index: string }; error?: string },
        { ok: boolean; result?: { recall: number; unknown_ids: number }; error?: string },
      ]
    >(
      python,
      checkScript,
      ['batch'],
      JSON.stringify([
        { cmd: 'info', file, ids: true },
        {
          cmd: 'recall',
          file,
          vectors: path.join(root, 'bucket', `${name}.knnvec`),
          doc_ids: path.join(root, 'bucket', `${name}.knndid`),
          data_type: c.dataType,
          dimension: c.dimension,
          k: 10,
          ef: 100,
          num_queries: 500,
          space: c.space,
        },
      ]),
    );
    const idsOk = info.ok && info.result!.ids.length === c.count && info.result!.ids[1] === 8;
    const r = recall.ok ? recall.result!.recall : NaN;
    if (!idsOk || !(r >= 0.9)) failures++;
    rows.push(
      `${name.padEnd(28)} ${c.count} x ${c.dimension}  ${s.file_name}  done after ${seconds}s  ids ${idsOk ? 'ok' : 'WRONG'}  recall@10 ${r.toFixed(3)}${recall.ok ? '' : ` (${recall.error})`}`,
    );
  }
  const jobsList = (await (await fetch(`http://127.0.0.1:${port}/_jobs`)).json()) as {
    jobs: { builder: string }[];
  };
  rows.push(`builders used: ${[...new Set(jobsList.jobs.map((j) => j.builder))].join(', ')}`);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  rows.push(
    ...metrics
      .split('\n')
      .filter((l) => /^knn_(builds_total|gpu_build_peak_bytes|job_phase_seconds_sum)/.test(l)),
  );
} finally {
  service.kill('SIGTERM');
  await new Promise((r) => service.on('exit', r));
  rmSync(root, { recursive: true, force: true });
}
console.log(`\n=== service on the GPU (BUILDER=${builder}, local store)`);
for (const r of rows) console.log(r);
console.log(
  failures === 0
    ? 'service smoke: all builds completed with recall >= 0.9'
    : `service smoke: ${failures} failure(s)`,
);
process.exitCode = failures === 0 ? 0 : 1;
