// The admission planner: the one place that chooses the builder (service and CLI) and estimates memory.
import { describe, expect, it } from 'vitest';

import { JobRefusedError } from '../../src/jobs/errors.js';
import { type PlannerOptions, createPlanner, estimateHostBytes } from '../../src/jobs/plan.js';
import { H100, NO_DEVICE, NOT_COMPILED } from '../helpers/gpu-info.js';
import { jobSpecFor } from '../helpers/job-spec.js';

const GIB = 2 ** 30;
const MILLION_768 = jobSpecFor({ doc_count: 1_000_000, dimension: 768 });
const planner = (o: Partial<PlannerOptions>) =>
  createPlanner({
    builder: 'auto',
    gpu: H100,
    gpuMemoryLimitBytes: Infinity,
    cpuMemoryLimitBytes: Infinity,
    gpuOptions: {},
    ...o,
  });

describe('createPlanner: builder choice', () => {
  it('takes the CPU when asked, whatever the GPU', () => {
    expect(planner({ builder: 'cpu' })(MILLION_768)).toMatchObject({ builder: 'cpu', gpuBytes: 0 });
  });

  it('auto: the GPU when it is compiled in, present and large enough', () => {
    const p = planner({})(MILLION_768);
    expect(p.builder).toBe('gpu');
    expect(p.reason).toContain('H100');
    expect(p.gpuBytes).toBeGreaterThan(4 * GIB);
  });

  it('auto: the CPU with the reason when there is no GPU builder, no device or too little memory', () => {
    expect(planner({ gpu: NOT_COMPILED })(MILLION_768)).toMatchObject({
      builder: 'cpu',
      reason: expect.stringContaining('built without the GPU builder'),
    });
    expect(planner({ gpu: NO_DEVICE })(MILLION_768).reason).toContain('no usable CUDA device');
    const small = planner({ gpuMemoryLimitBytes: 2 * GIB })(MILLION_768);
    expect(small.builder).toBe('cpu');
    expect(small.reason).toMatch(/needs about \d+\.\d\d GiB of GPU memory, over the 2\.00 GiB allowed/);
  });

  it('gpu: refuses with the reason instead of falling back', () => {
    expect(() => planner({ builder: 'gpu', gpu: NO_DEVICE })(MILLION_768)).toThrow(JobRefusedError);
    const one = { ...MILLION_768, docCount: 1 };
    expect(() => planner({ builder: 'gpu' })(one)).toThrow(/at least 2 vectors/);
    expect(planner({ builder: 'gpu' })(MILLION_768).builder).toBe('gpu');
  });

  it('refuses a build neither builder can ever take, naming both reasons', () => {
    const p = planner({ gpu: NO_DEVICE, cpuMemoryLimitBytes: GIB });
    expect(() => p(MILLION_768)).toThrow(/GPU builder: .*CPU builder: needs .* over CPU_MEMORY_LIMIT/);
  });
});

describe('estimateHostBytes (real peaks: test/pipeline/host-memory.test.ts)', () => {
  const MIB = 2 ** 20;
  const perVector = (builder: 'cpu' | 'gpu', o = {}) =>
    (estimateHostBytes(MILLION_768, builder, o) -
      estimateHostBytes({ ...MILLION_768, docCount: 0 }, builder, o)) /
    1e6;

  it('CPU: vectors in place, the graph, its working memory and a visited byte per vector per thread', () => {
    // 3072 vector + 4 id + 4 x 33.07 graph + 4 x 1.07 upper apart + 24 + threads (m 16)
    expect(perVector('cpu', { threads: 1 })).toBeCloseTo(3072 + 4 + 132.27 + 4.27 + 24 + 1, 1);
    expect(perVector('cpu', { threads: 65 }) - perVector('cpu', { threads: 1 })).toBeCloseTo(64, 5);
  });

  it('GPU: the base graph downloaded next to the file graph, and the CUDA runtime in the fixed part', () => {
    // degree 32 (2m): file graph 4 x 33.07, base graph 4 x 32, levels, offsets, level draw
    expect(perVector('gpu')).toBeGreaterThan(3072 + 4 + 132 + 128 + 13);
    expect(perVector('gpu', { gpuGraphDegree: 64 }) - perVector('gpu')).toBeGreaterThan(250); // both graphs: 2 x 4 x 32
    const fixed = (builder: 'cpu' | 'gpu') => estimateHostBytes({ ...MILLION_768, docCount: 0 }, builder);
    expect(fixed('gpu') - fixed('cpu')).toBe(512 * MIB);
  });

  it("counts the store's upload buffers (S3 part buffers), through the planner too", () => {
    const s3 = { transferBytes: 5 * 16 * MIB };
    expect(estimateHostBytes(MILLION_768, 'cpu', s3) - estimateHostBytes(MILLION_768, 'cpu')).toBe(80 * MIB);
    const host = (o: Partial<PlannerOptions>) => planner({ builder: 'cpu', ...o })(MILLION_768).hostBytes;
    expect(host(s3) - host({})).toBe(80 * MIB);
    expect(host({ buildThreads: 3 }) - host({ buildThreads: 1 })).toBe(2e6);
  });
});
