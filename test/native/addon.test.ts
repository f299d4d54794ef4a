// The addon's build() door for the CPU builder, called directly (below the TypeScript validation): bad options
// become rejected promises with a reason, never a crash; builds are reproducible and independent of each other.
import { describe, expect, it } from 'vitest';

import { gpuWarmUp, loadAddon, nativeBuild, type NativeBuildOptions } from '../../src/builders/native.js';
import { assertValidGraph } from '../helpers/graph-check.js';
import { clusteredFloat } from '../helpers/synthetic.js';

const D = 16;
const N = 3000;
const VECTORS = clusteredFloat({ count: N, dimension: D, seed: 5 });
const OPTIONS: NativeBuildOptions = {
  dataType: 'float',
  metric: 'l2',
  dimension: D,
  chunks: [VECTORS],
  m: 12,
  efConstruction: 64,
  efSearch: 64,
  hierarchical: true,
  threads: 1,
  seed: 42,
};

describe('native build (cpu)', () => {
  const rejected: [string, Record<string, unknown>, RegExp][] = [
    ['m 1', { m: 1 }, /^CPU build failed: m must be in \[2, 4096\], got 1$/],
    ['ef_construction 0', { efConstruction: 0 }, /ef_construction must be >= 1, got 0/],
    ['ef_search -3', { efSearch: -3 }, /ef_search must be >= 1, got -3/],
    ['threads -1', { threads: -1 }, /threads must be >= 0/],
    ['hamming on floats', { metric: 'hamming' }, /the hamming space needs binary vectors/],
    ['l2 on binary', { dataType: 'binary', dimension: 128 }, /binary vectors need the hamming space/],
    ['unknown data type', { dataType: 'double' }, /options.dataType: unknown data type 'double'/],
    ['unknown metric', { metric: 'cosine' }, /options.metric: unknown metric 'cosine'/],
    ['missing m', { m: undefined }, /options.m must be a number/],
    ['chunks not typed arrays', { chunks: [[1, 2, 3]] }, /options.chunks\[0\] must be a typed array/],
    ['partial vectors', { chunks: [VECTORS.subarray(3)] }, /options.chunks\[0\] does not hold whole vectors/],
    ['no vectors', { chunks: [] }, /options.chunks hold no vectors/],
    ['dimension 0', { dimension: 0 }, /options.dimension must be > 0/],
  ];
  it.each(rejected)('rejects %s with an Error that says why', async (_name, change, message) => {
    const err = await nativeBuild('cpu', { ...OPTIONS, ...change } as NativeBuildOptions).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(message);
  });

  it('reads options.cancel: an Int32Array whose element 0 stops the build when non-zero', async () => {
    expect(() => loadAddon().build('cpu', { ...OPTIONS, cancel: new Float32Array(1) } as never)).toThrow(
      /options.cancel must be an Int32Array of at least one element/,
    );
    await expect(loadAddon().build('cpu', { ...OPTIONS, cancel: Int32Array.of(1) })).rejects.toThrow(
      /^build cancelled$/,
    );
    const built = await loadAddon().build('cpu', { ...OPTIONS, cancel: Int32Array.of(0) });
    assertValidGraph(built, N);
  });

  it('gives the same graph for the same seed with one thread, and other levels for another seed', async () => {
    const a = await nativeBuild('cpu', OPTIONS);
    const b = await nativeBuild('cpu', OPTIONS);
    const c = await nativeBuild('cpu', { ...OPTIONS, seed: 43 });
    expect(b.graph.neighbors).toEqual(a.graph.neighbors);
    expect(b.graph.levels).toEqual(a.graph.levels);
    expect(c.graph.levels).not.toEqual(a.graph.levels);
    assertValidGraph(c.graph, N);
  });

  it('runs concurrent builds with different thread counts side by side', async () => {
    const [one, two] = await Promise.all([
      nativeBuild('cpu', OPTIONS),
      nativeBuild('cpu', { ...OPTIONS, threads: 2 }),
    ]);
    assertValidGraph(one.graph, N);
    assertValidGraph(two.graph, N);
    // The one-thread build is unaffected by the other build's thread setting: still the reproducible graph.
    expect(one.graph.neighbors).toEqual((await nativeBuild('cpu', OPTIONS)).graph.neighbors);
  });

  it('hands the graph over as typed arrays that own their memory', async () => {
    const { graph } = await nativeBuild('cpu', OPTIONS);
    expect(graph.neighbors).toBeInstanceOf(Int32Array);
    expect(graph.levels).toBeInstanceOf(Int32Array);
    expect(graph.assignProbas).toBeInstanceOf(Float64Array);
    expect(graph.neighbors.byteOffset).toBe(0);
    expect(graph.neighbors.buffer.byteLength).toBe(graph.neighbors.byteLength);
  });

  it('says whether the GPU builder was compiled in', () => {
    expect(typeof loadAddon().withGpu).toBe('boolean');
  });

  // Without the GPU builder (this machine, CI) the export exists and fails clearly; on the GPU machine
  // scripts/gpu-check.sh warms device 0 through it, and an absent device must fail the same clear way.
  it('exports gpuWarmUp, which rejects with a message for a device it cannot use', async () => {
    const device = loadAddon().withGpu ? 1024 : 0;
    await expect(gpuWarmUp(device)).rejects.toThrow(
      loadAddon().withGpu
        ? /GPU 1024 warm-up failed: .*does not exist/
        : /GPU 0 warm-up failed: .*without CUDA/,
    );
  });
});
