// The pipeline's downloads: the first failure aborts the other transfer and runJob settles only once it has
// stopped, so nothing reports progress after the job failed (in a worker, that progress went to a closed IPC
// channel and crashed it with ERR_IPC_CHANNEL_CLOSED).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { beforeAll, describe, expect, it } from 'vitest';

import type { JobSpec } from '../../src/build-spec.js';
import { formatPolicy } from '../../src/faiss-format/policy.js';
import type { ProgressUpdate } from '../../src/jobs/job.js';
import { ioForRequest, runJob } from '../../src/pipeline/run-job.js';
import { createObjectStore } from '../../src/storage/index.js';
import { jobSpecFor } from '../helpers/job-spec.js';

describe('runJob downloads', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'knn-run-job-'));
    mkdirSync(path.join(root, 'c', 'seg'), { recursive: true });
    // No .knnvec (its download fails at once) and a 64 MiB .knndid (its download takes a while).
    writeFileSync(path.join(root, 'c', 'seg', 'a.knndid'), new Uint8Array(64 * 2 ** 20));
    return () => rmSync(root, { recursive: true, force: true });
  });

  /** A CPU job on the local store at `root`, settling with its error (or its result). */
  const runCpuJob = (request: JobSpec, report: (u: ProgressUpdate) => void = () => undefined) =>
    runJob(request, 'cpu', {
      io: ioForRequest(createObjectStore({ kind: 'local', localRoot: root }), request),
      builders: {},
      formatPolicy: formatPolicy('compatible'),
      buildDefaults: { threads: 1, gpu: { memoryLimitBytes: 2 ** 30, knnAlgorithm: 'auto' } },
      signal: new AbortController().signal,
      report,
      acquireGpu: () => Promise.reject(new Error('no GPU')),
    }).catch((e: Error) => e);

  it('aborts the other download on the first failure and reports nothing after failing', async () => {
    const request = jobSpecFor({
      container_name: 'c',
      vector_path: 'seg/a.knnvec',
      doc_id_path: 'seg/a.knndid',
      dimension: 8,
      doc_count: 16 * 2 ** 20,
    });
    const updates: ProgressUpdate[] = [];
    const failure = await runCpuJob(request, (u) => updates.push(u));
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/NoSuchKey/);
    const reportedWhenFailed = updates.length;
    await sleep(300); // the .knndid read takes longer than this when nobody stops it
    expect(updates.length).toBe(reportedWhenFailed);
  });

  it('says a wrong-sized .knndid is about doc ids, not vectors', async () => {
    writeFileSync(path.join(root, 'c', 'seg', 'b.knnvec'), new Uint8Array(10 * 8 * 4));
    writeFileSync(path.join(root, 'c', 'seg', 'b.knndid'), new Uint8Array(9 * 4));
    const request = jobSpecFor({
      container_name: 'c',
      vector_path: 'seg/b.knnvec',
      doc_id_path: 'seg/b.knndid',
      dimension: 8,
      doc_count: 10,
    });
    const failure = await runCpuJob(request);
    expect((failure as Error).message).toBe(
      'local://c/seg/b.knndid: .knndid holds 9 doc ids (36 bytes) but doc_count is 10 (40 bytes expected)',
    );
  });
});
