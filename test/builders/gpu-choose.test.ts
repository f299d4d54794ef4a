// Builder choice and the GPU memory estimate (no GPU needed), and the GPU builder's option checks, which run
// before the addon is touched.
import { describe, expect, it } from 'vitest';

import { chooseBuilder, estimateGpuBytes, gpuProblem, usableGpuCount } from '../../src/builders/choose.js';
import { BuildInputError } from '../../src/builders/cpu.js';
import { GpuBuilder, resolveGpuOptions } from '../../src/builders/gpu.js';
import type { GpuInfo } from '../../src/builders/native.js';
import type { BuildParams } from '../../src/builders/types.js';

const GIB = 2 ** 30;
const H100: GpuInfo = {
  compiled: true,
  deviceCount: 1,
  name: 'NVIDIA H100 80GB HBM3',
  totalBytes: 80 * GIB,
  freeBytes: 79 * GIB,
  computeCapability: '9.0',
  error: null,
};
const NOT_COMPILED: GpuInfo = {
  ...H100,
  compiled: false,
  deviceCount: 0,
  error: 'the native addon was built without the GPU builder',
};
const NO_DEVICE: GpuInfo = {
  ...H100,
  deviceCount: 0,
  error: 'no usable CUDA device: no CUDA-capable device',
};
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

describe('chooseBuilder', () => {
  it('takes the CPU when asked, whatever the GPU', () => {
    expect(chooseBuilder('cpu', H100, MILLION_768).kind).toBe('cpu');
  });

  it('auto: the GPU when it is compiled in, present and large enough', () => {
    const d = chooseBuilder('auto', H100, MILLION_768);
    expect(d.kind).toBe('gpu');
    expect(d.reason).toContain('H100');
  });

  it('auto: the CPU with the reason when there is no GPU builder, no device or too little memory', () => {
    expect(chooseBuilder('auto', NOT_COMPILED, MILLION_768)).toEqual({
      kind: 'cpu',
      reason: expect.stringContaining('built without the GPU builder'),
    });
    expect(chooseBuilder('auto', NO_DEVICE, MILLION_768).reason).toContain('no usable CUDA device');
    const small = chooseBuilder('auto', H100, { ...MILLION_768, memoryLimitBytes: 2 * GIB });
    expect(small.kind).toBe('cpu');
    expect(small.reason).toMatch(/needs about \d+\.\d\d GiB of GPU memory, over the 2\.00 GiB allowed/);
  });

  it('gpu: refuses with the reason instead of falling back', () => {
    expect(() => chooseBuilder('gpu', NO_DEVICE, MILLION_768)).toThrow(BuildInputError);
    expect(() => chooseBuilder('gpu', H100, { ...MILLION_768, count: 1 })).toThrow(/at least 2 vectors/);
    expect(chooseBuilder('gpu', H100, MILLION_768).kind).toBe('gpu');
  });

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
