// The service side of a job's worker process: a worker that does not exit after its job settled is killed.
import path from 'node:path';

import pino from 'pino';
import { describe, expect, it } from 'vitest';

import { createProcessBuild } from '../../src/pipeline/process-build.js';
import type { BuildContext } from '../../src/jobs/scheduler.js';
import { tsxExecArgv } from '../../src/tsx-loader.js';
import { jobSpecFor } from '../helpers/job-spec.js';
import { allGone } from '../helpers/service-process.js';

describe('worker processes', () => {
  it('kills a worker that has not exited some time after its job settled', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
    const build = createProcessBuild({
      config: {
        storage: { kind: 'local', localRoot: '.' },
        formatPolicy: 'compatible',
        threads: 1,
        gpu: { memoryLimitBytes: 2 ** 30, knnAlgorithm: 'auto' },
        logLevel: 'silent',
      },
      worker: {
        file: path.resolve(import.meta.dirname, '../fixtures/stuck-worker.ts'),
        execArgv: tsxExecArgv(),
        exitAfterSettledMs: 500,
      },
    });
    const ctx: BuildContext = {
      id: 'job',
      request: jobSpecFor(),
      plan: { builder: 'cpu', hostBytes: 1, gpuBytes: 0, reason: 'test' },
      attempt: 1,
      signal: new AbortController().signal,
      log,
      report: () => undefined,
      acquireGpu: () => Promise.reject(new Error('no GPU')),
    };
    // The worker's measurements come back with the outcome (the scheduler hands them to the metrics).
    expect(await build(ctx)).toEqual({
      fileName: 'x.faiss',
      measurements: expect.objectContaining({ fileName: 'x.faiss', builder: 'cpu', format: 'test' }),
    });
    const pid = Number(/"worker":(\d+)/.exec(lines.join('\n'))![1]);
    expect(await allGone([pid], 5000)).toBeGreaterThanOrEqual(0); // was: alive for good
    expect(lines.join('\n')).toContain('worker did not exit after its job settled: killing it');
  });
});
