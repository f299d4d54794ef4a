// The CPU builder's AVX2 distance kernels against its portable ones (the portableKernels build option): with one
// thread and the same seed, the graph depends only on distances, so both must give (nearly) the same graph for
// every element type and metric (rounding differs, so a rare link may too).
import { beforeAll, describe, expect, it } from 'vitest';

import { assertValidGraph } from '../helpers/graph-check.js';
import { buildKernelGraphs, KERNEL_CASES, KERNEL_COUNT, type KernelGraph } from './fixtures/kernel-cases.js';

function sameLinkShare(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

describe('CPU distance kernels', () => {
  let fast: Record<string, KernelGraph>;
  let scalar: Record<string, KernelGraph>;
  beforeAll(async () => {
    [fast, scalar] = await Promise.all([buildKernelGraphs(), buildKernelGraphs(true)]);
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
