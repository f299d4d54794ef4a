// The admission estimate (estimateHostBytes) against real jobs: each job runs through the real pipeline (local
// store, CPU builder, writer) in a Node process of its own (test/fixtures/peak-rss-job.ts; vitest's own heap made
// in-process numbers meaningless), which reports its resident memory before the job, at the end of the build and
// at the end of the job (Linux's VmHWM, reset at the start).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  UNCOLLECTED_BYTES,
  WORKER_PROCESS_BYTES,
  estimateHostBytes,
  readStagingBytes,
} from '../../src/jobs/plan.js';
import { type JobShape, measureJob, writeJobFiles } from '../helpers/peak-rss.js';

const MIB = 2 ** 20;
const THREADS = 2;
/** Heap pages on top of the builder's peak (and, for half_float, the read's staging buffers: readStagingBytes). */
const BUILD_SLACK_BYTES = 16 * MIB;

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'knn-host-memory-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.runIf(process.platform === 'linux')('host memory estimate vs a real job (Linux: VmHWM)', () => {
  // Sizes where the vectors and the graph dominate the process (float: 100 MiB of vectors; byte: 25 MiB of
  // vectors, 30 MiB of graph), built in a few seconds each with ef_construction 16 (memory does not depend on it).
  const cases: (JobShape & { dataDominates: boolean })[] = [
    { dataType: 'float', dimension: 128, docCount: 200_000, dataDominates: true },
    { dataType: 'byte', dimension: 128, docCount: 200_000, dataDominates: true },
    { dataType: 'half_float', dimension: 128, docCount: 50_000, dataDominates: false },
    { dataType: 'binary', dimension: 256, docCount: 50_000, dataDominates: false },
  ];

  it.each(cases)(
    '$dataType $docCount x $dimension: the peak stays under the estimate, which is not far above it',
    async ({ dataDominates, ...shape }) => {
      const dir = path.join(root, `${shape.dataType}-${shape.docCount}`);
      const spec = writeJobFiles(dir, shape);
      const m = await measureJob(dir, spec, { threads: THREADS });
      expect(m.peakReset).toBe(true);
      const estimate = estimateHostBytes(spec, 'cpu', { threads: THREADS });
      const fixed = estimateHostBytes({ ...spec, docCount: 0 }, 'cpu', { threads: THREADS });
      const perVectorPart = estimate - fixed;
      const buildGrowth = m.buildPeakBytes - m.baselineBytes;
      const jobGrowth = m.peakBytes - m.baselineBytes;
      const mib = (b: number) => `${(b / MIB).toFixed(1)} MiB`;
      const seen =
        `baseline ${mib(m.baselineBytes)}, build +${mib(buildGrowth)}, job +${mib(jobGrowth)}; ` +
        `estimate ${mib(estimate)} (per-vector part ${mib(perVectorPart)}, fixed ${mib(fixed)})`;

      // The whole peak fits: the process itself within its allowance, the job's growth within the rest.
      expect(m.baselineBytes, seen).toBeLessThanOrEqual(WORKER_PROCESS_BYTES);
      expect(jobGrowth, seen).toBeLessThanOrEqual(estimate - WORKER_PROCESS_BYTES);
      expect(m.peakBytes, seen).toBeLessThanOrEqual(estimate);
      // The per-vector part alone covers the download and the build, so the fixed allowance hides no per-vector
      // shortfall (which would grow with the job's size); what the writer leaves for V8's collector is bounded.
      expect(buildGrowth, seen).toBeLessThanOrEqual(
        perVectorPart + BUILD_SLACK_BYTES + readStagingBytes(spec.dataType),
      );
      expect(jobGrowth - buildGrowth, seen).toBeLessThanOrEqual(UNCOLLECTED_BYTES);
      if (dataDominates) {
        // ... and is not far above it: no needless waiting or 507 for jobs that fit.
        expect(perVectorPart, seen).toBeLessThanOrEqual(1.5 * buildGrowth);
        expect(estimate, seen).toBeLessThanOrEqual(1.5 * jobGrowth + fixed);
      }
    },
    120_000, // 10-25 s each on an idle 2-core machine; a busy one takes longer
  );
});
