// Measures one real job's memory in a process of its own (test/fixtures/peak-rss-job.ts), for comparing with the
// admission estimate (src/jobs/plan.ts estimateHostBytes). Used by test/pipeline/host-memory.test.ts and, on
// the GPU machine, test/gpu/host-memory.ts.
import { execFile } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import type { JobSpec } from '../../src/build-spec.js';
import type { BuilderKind } from '../../src/builders/types.js';
import { tsxExecArgv } from '../../src/tsx-loader.js';
import { wireBytesPerVector } from '../../src/vectors/types.js';

export interface PeakRss {
  /** The process's resident memory before the job started (Node, code, addon). */
  baselineBytes: number;
  /** Its largest resident memory by the end of the build (download and build). */
  buildPeakBytes: number;
  /** Its largest resident memory by the end of the job. */
  peakBytes: number;
  /** Whether the peak was reset at the baseline (Linux); else the peaks are the process's whole-life ones. */
  peakReset: boolean;
  format: string;
  seconds: Record<string, number>;
}

export type JobShape = Pick<JobSpec, 'dataType' | 'dimension' | 'docCount'>;

/** Writes seeded random vectors (the `.knnvec` wire form) and ids into the local store at `root`. */
export function writeJobFiles(root: string, shape: JobShape): JobSpec {
  const { dataType, dimension, docCount: count } = shape;
  const container = 'bucket';
  mkdirSync(path.join(root, container), { recursive: true });
  const wire = new Uint8Array(count * wireBytesPerVector(dataType, dimension));
  let state = 0x9e3779b9;
  const next = () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state;
  };
  if (dataType === 'float' || dataType === 'half_float') {
    const floats = new Float32Array(wire.buffer);
    for (let i = 0; i < floats.length; i++) floats[i] = next() / 2 ** 32 - 0.5;
  } else {
    for (let i = 0; i < wire.length; i++) wire[i] = next() & 0xff;
  }
  // In pieces: one write takes at most 2 GiB, and a 1M x 768 float file is 3 GB.
  const fd = openSync(path.join(root, container, 'v.knnvec'), 'w');
  try {
    for (let at = 0; at < wire.length; at += 2 ** 30) writeSync(fd, wire.subarray(at, at + 2 ** 30));
  } finally {
    closeSync(fd);
  }
  writeFileSync(
    path.join(root, container, 'v.knndid'),
    new Int32Array(count).map((_, i) => i),
  );
  return {
    ...shape,
    containerName: container,
    vectorPath: 'v.knnvec',
    docIdPath: 'v.knndid',
    tenantId: 'peak-rss',
    spaceType: dataType === 'binary' ? 'hamming' : 'l2',
    m: 16,
    efConstruction: 8, // memory does not depend on it; a small one keeps the build short
    efSearch: 100,
    skipStoredVectors: false,
  };
}

export interface MeasureOptions {
  builder?: BuilderKind;
  threads?: number;
  /** The command that runs the child, before its JSON argument (default: this Node with tsx, the .ts file). */
  child?: string[];
}

/** Runs the job in a fresh Node process and returns its memory. */
export async function measureJob(root: string, spec: JobSpec, o: MeasureOptions = {}): Promise<PeakRss> {
  const job = { root, spec, builder: o.builder ?? 'cpu', threads: o.threads ?? 2 };
  const [command, ...args] = o.child ?? [
    process.execPath,
    ...tsxExecArgv(),
    path.resolve(import.meta.dirname, '../fixtures/peak-rss-job.ts'),
  ];
  const { stdout } = await promisify(execFile)(command!, [...args, JSON.stringify(job)], {
    maxBuffer: 1 << 20,
    env: { ...process.env, NODE_OPTIONS: '' }, // no inspector or test-runner hooks in the measured process
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as PeakRss;
}
