// The GPU builder's host memory against the admission estimate (estimateHostBytes(spec, 'gpu')), on the GPU
// machine: each job runs through the real pipeline (local store, GPU builder, writer) in a Node process of its own
// (the bundled test/fixtures/peak-rss-job.ts), which reports its resident memory before the job (addon loaded,
// CUDA not yet), at the end of the build and at the end of the job. Prints a table; exits 1 when a peak is over
// its estimate. scripts/gpu-check.sh runs the bundle (step `host-memory`):
//   node host-memory.mjs <bundled peak-rss-job.mjs> [count=1000000] [dimension=768]
// For a dry run elsewhere: HOST_MEMORY_BUILDER=cpu and a small count.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { BuilderKind } from '../../src/builders/types.js';
import { GPU_RUNTIME_BYTES, WORKER_PROCESS_BYTES, estimateHostBytes } from '../../src/jobs/plan.js';
import type { DataType } from '../../src/vectors/types.js';
import { measureJob, writeJobFiles } from '../helpers/peak-rss.js';

const [child, countArg = '1000000', dimensionArg = '768'] = process.argv.slice(2);
if (!child) throw new Error('usage: host-memory.mjs <bundled peak-rss-job.mjs> [count] [dimension]');
const builder = (process.env.HOST_MEMORY_BUILDER ?? 'gpu') as BuilderKind;
const count = Number(countArg);
const dimension = Number(dimensionArg);
const threads = os.availableParallelism();
const MIB = 2 ** 20;
const mib = (b: number) => (b / MIB).toFixed(0).padStart(7);

console.log(
  `=== host memory: ${builder} builder, ${count} x ${dimension}, ${threads} threads (MiB; growth = peak - baseline)`,
);
console.log('type        format            baseline  build+    job+   peak  estimate  peak/estimate');
let failed = 0;
for (const dataType of ['float', 'half_float', 'byte', 'binary'] as DataType[]) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'knn-host-memory-'));
  try {
    const spec = writeJobFiles(root, { dataType, dimension, docCount: count });
    const m = await measureJob(root, spec, { builder, threads: 0, child: [process.execPath, child] });
    const estimate = estimateHostBytes(spec, builder, { threads });
    // A GPU worker's baseline includes the CUDA libraries' pages (228 MiB on the H200 host), which the estimate
    // counts in GPU_RUNTIME_BYTES rather than in the worker process's allowance.
    const baselineAllowance = WORKER_PROCESS_BYTES + (builder === 'gpu' ? GPU_RUNTIME_BYTES : 0);
    const ok = m.peakBytes <= estimate && m.baselineBytes <= baselineAllowance && m.peakReset;
    if (!ok) failed++;
    console.log(
      `${dataType.padEnd(11)} ${m.format.padEnd(16)} ${mib(m.baselineBytes)} ${mib(m.buildPeakBytes - m.baselineBytes)} ` +
        `${mib(m.peakBytes - m.baselineBytes)} ${mib(m.peakBytes)} ${mib(estimate).padStart(9)}  ` +
        `${(m.peakBytes / estimate).toFixed(2).padStart(13)}${ok ? '' : m.peakBytes > estimate ? '  OVER' : '  BASELINE'}`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
console.log(
  failed ? `host memory: ${failed} job(s) over the estimate` : 'host memory: every peak under its estimate',
);
process.exit(failed ? 1 : 0);
