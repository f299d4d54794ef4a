// Whether the GPU builder can run a build and its GPU memory estimate (no GPU needed), and the GPU builder's option checks, which run
// before the addon is touched.
import { describe, expect, it } from 'vitest';

import { estimateGpuBytes, gpuProblem, usableGpuCount } from '../../src/builders/choose.js';
import { BuildInputError } from '../../src/builders/cpu.js';
import { GpuBuilder, resolveGpuOptions } from '../../src/builders/gpu.js';
import type { BuildParams } from '../../src/builders/types.js';
import { H100, NO_DEVICE, NOT_COMPILED } from '../helpers/gpu-info.js';

const GIB = 2 ** 30;
const MILLION_768 = { count: 1_000_000, dimension: 768, dataType: 'float' as const, params: { m: 16 } };

describe('estimateGpuBytes', () => {
  it('is a few GiB for 1M x 768 at m 16 (fp16 rows, lists, candidates, tiles)', () => {
    const bytes = estimateGpuBytes(1_000_000, 768, 'float', { m: 16 });
    expect(bytes).toBeGreaterThan(4 * GIB);
    expect(bytes).toBeLessThan(8 * GIB);
  });

  it('grows with count, dimension and degree', () => {
    const base = estimateGpuBytes(100_000, 128, 'float', { m: 16 });
    expect(estimateGpuBytes(200_000, 128, 'float', { m: 16 })).toBeGreaterThan(base);
    expect(estimateGpuBytes(100_000, 768, 'float', { m: 16 })).toBeGreaterThan(base);
    expect(estimateGpuBytes(100_000, 128, 'float', { m: 16, graphDegree: 64 })).toBeGreaterThan(base);
    expect(estimateGpuBytes(100_000, 128, 'float', { m: 16, intermediateDegree: 128 })).toBeGreaterThan(base);
  });

  it('counts binary dimensions in bits (one fp16 element per bit) and pads to 8', () => {
    expect(estimateGpuBytes(10_000, 256, 'binary', { m: 16 })).toBe(
      estimateGpuBytes(10_000, 256, 'float', { m: 16 }),
    );
    expect(estimateGpuBytes(10_000, 13, 'float', { m: 16 })).toBe(
      estimateGpuBytes(10_000, 16, 'float', { m: 16 }),
    );
  });

  it('adds the k-means batches only on the approximate path', () => {
    const exact = estimateGpuBytes(50_000, 64, 'float', { m: 16, knnAlgorithm: 'exact' });
    const approx = estimateGpuBytes(50_000, 64, 'float', { m: 16, knnAlgorithm: 'approximate' });
    expect(approx).toBeGreaterThan(exact);
    expect(estimateGpuBytes(50_000, 64, 'float', { m: 16 })).toBe(exact); // 'auto' is exact at this size
  });
});

describe('usableGpuCount', () => {
  it('exposes the usable device count for job scheduling', () => {
    expect(usableGpuCount(H100)).toBe(1);
    expect(usableGpuCount({ ...H100, deviceCount: 4 })).toBe(4);
    expect(usableGpuCount(NOT_COMPILED)).toBe(0);
    expect(usableGpuCount(NO_DEVICE)).toBe(0);
    expect(gpuProblem(H100, MILLION_768)).toBeNull();
  });
});

describe('GPU builder options', () => {
  it('defaults: intermediate degree 4m, graph degree 2m, device 0, k-NN algorithm auto', () => {
    expect(resolveGpuOptions(16)).toEqual({
      device: 0,
      memoryLimitBytes: 0,
      intermediateDegree: 64,
      graphDegree: 32,
      knnAlgorithm: 'auto',
    });
  });

  it('a build overrides the builder, which overrides the defaults; 0 means default', () => {
    const g = resolveGpuOptions(
      16,
      { graphDegree: 0, device: 1 },
      { graphDegree: 64, knnAlgorithm: 'exact', memoryLimitBytes: GIB },
    );
    expect(g).toEqual({
      device: 1,
      memoryLimitBytes: GIB,
      intermediateDegree: 64,
      graphDegree: 64,
      knnAlgorithm: 'exact',
    });
    expect(resolveGpuOptions(8, { graphDegree: 48 }).intermediateDegree).toBe(48);
    // Tuning (benchmarks, tests): the build's knobs over the builder's, absent when neither sets any.
    expect(
      resolveGpuOptions(8, { tuning: { bridges: 0 } }, { tuning: { verbose: true, bridges: 2 } }).tuning,
    ).toEqual({
      verbose: true,
      bridges: 0,
    });
    expect(resolveGpuOptions(8)).not.toHaveProperty('tuning');
  });

  const vectors = { dataType: 'float' as const, dimension: 4, count: 3, chunks: [new Float32Array(12)] };
  const params: BuildParams = {
    spaceType: 'l2',
    m: 16,
    efConstruction: 100,
    efSearch: 100,
    hierarchical: false,
  };

  it.each([
    [{ graphDegree: 300 }, /graph degree must be an integer in \[1, 192\]/],
    [{ intermediateDegree: 16 }, /intermediate degree must be an integer in \[graph degree 32, 192\]/],
    [{ knnAlgorithm: 'fast' as 'auto' }, /k-NN algorithm must be one of auto, exact, approximate/],
    [{ memoryLimitBytes: -1 }, /memory limit/],
    [{ tuning: { bridges: 17 } }, /gpu tuning bridges out of range, got 17/],
    [{ tuning: { ivfProbes: 0 } }, /gpu tuning ivfProbes out of range, got 0/],
  ])('rejects %o before reaching the addon', async (gpu, message) => {
    await expect(new GpuBuilder().build(vectors, { ...params, gpu })).rejects.toThrow(message);
  });

  it('rejects data and space that do not go together, and single vectors', async () => {
    await expect(new GpuBuilder().build(vectors, { ...params, spaceType: 'hamming' })).rejects.toThrow(
      BuildInputError,
    );
    const one = { ...vectors, count: 1, chunks: [new Float32Array(4)] };
    await expect(new GpuBuilder().build(one, params)).rejects.toThrow(/at least 2 vectors/);
  });
});
