// The CPU builder's AVX2 distance kernels against its portable ones (KNN_CPU_KERNELS=scalar, in a child
// process): with one thread and the same seed, the graph depends only on distances, so both must give
// (nearly) the same graph for every element type and metric (rounding differs, so a rare link may too).
import { fork } from 'node:child_process';
import path from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { assertValidGraph } from '../helpers/graph-check.js';
import { buildKernelGraphs, KERNEL_CASES, KERNEL_COUNT, type KernelGraph } from './fixtures/kernel-cases.js';

const CHILD = path.join(import.meta.dirname, 'fixtures/build-child.ts');

function graphsWithScalarKernels(): Promise<Record<string, KernelGraph>> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, ['kernel-graphs'], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, KNN_CPU_KERNELS: 'scalar' },
      serialization: 'advanced', // typed arrays cross as typed arrays
    });
    child.on('message', (m) => resolve((m as { graphs: Record<string, KernelGraph> }).graphs));
    child.on('error', reject);
    child.on('exit', (code) => code !== 0 && reject(new Error(`kernel-graphs child exited ${code}`)));
  });
}

function sameLinkShare(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

describe('CPU distance kernels', () => {
  let fast: Record<string, KernelGraph>;
  let scalar: Record<string, KernelGraph>;
  beforeAll(async () => {
    [fast, scalar] = await Promise.all([buildKernelGraphs(), graphsWithScalarKernels()]);
  });

  it.each(Object.keys(KERNEL_CASES))('give the same graph either way (%s)', (name) => {
    const a = fast[name]!;
    const b = scalar[name]!;
    expect(b.levels).toEqual(a.levels); // levels come from the seed alone
    assertValidGraph(b, KERNEL_COUNT);
    expect(b.neighbors.length).toBe(a.neighbors.length);
    // Measured 1.0; a 1% error in a quarter of the terms already drops it to 0.95-0.98.
    expect(sameLinkShare(a.neighbors, b.neighbors)).toBeGreaterThan(0.99);
  });
});
