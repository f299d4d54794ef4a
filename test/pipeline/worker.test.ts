// A job's worker process on its own (forked as the service forks it), against S3 through the fault proxy: when one
// of its downloads fails, the other is aborted at once and the worker reports the failure and exits cleanly
// (no progress message after the IPC channel closed, which crashed it with ERR_IPC_CHANNEL_CLOSED), then says
// it is ready for the next job and exits when the service closes the channel.
import { fork } from 'node:child_process';
import path from 'node:path';

import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { FromWorker, ToWorker, WorkerConfig } from '../../src/pipeline/messages.js';
import { tsxExecArgv } from '../../src/tsx-loader.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import {
  createTestBucket,
  deleteTestBucket,
  putObject,
  s3StoreSettings,
  s3Unavailable,
  testS3Client,
} from '../helpers/s3.js';
import { jobSpecFor } from '../helpers/job-spec.js';

const WORKER = path.resolve(import.meta.dirname, '../../src/pipeline/worker.ts');

interface WorkerRun {
  messages: FromWorker[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

function runWorker(start: Extract<ToWorker, { type: 'start' }>): Promise<WorkerRun> {
  const began = Date.now();
  return new Promise((resolve, reject) => {
    const child = fork(WORKER, [], {
      execArgv: tsxExecArgv(),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const messages: FromWorker[] = [];
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('message', (m: FromWorker) => {
      messages.push(m);
      if (m.type === 'ready') child.disconnect(); // as the service retires a worker: it must exit cleanly
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ messages, code, signal, stderr, ms: Date.now() - began }));
    child.send(start);
  });
}

const skipped = s3Unavailable();
describe.skipIf(skipped !== undefined)(
  skipped ? `build worker (skipped: ${skipped})` : 'build worker',
  () => {
    let proxy: FaultProxy;
    let client: S3Client;
    let bucket: string;

    beforeAll(async () => {
      client = testS3Client();
      bucket = await createTestBucket(client, 'worker');
      proxy = await FaultProxy.start(s3StoreSettings().endpoint!);
      const count = 200;
      const dimension = 8;
      await putObject(client, bucket, 'seg/a.knnvec', new Uint8Array(count * dimension * 4));
      await putObject(
        client,
        bucket,
        'seg/a.knndid',
        new Uint8Array(new Int32Array(count).map((_, i) => i).buffer),
      );
    });
    afterAll(async () => {
      await proxy?.close();
      if (bucket) await deleteTestBucket(client, bucket);
    });

    it('aborts the other download when one fails, reports the failure and exits 0', async () => {
      const request = jobSpecFor({
        container_name: bucket,
        vector_path: 'seg/a.knnvec',
        doc_id_path: 'seg/a.knndid',
        dimension: 8,
        doc_count: 200,
      });
      proxy.inject(
        (r) => r.url.includes('.knnvec'),
        { kind: 'status', status: 403, code: 'AccessDenied' },
        10,
      );
      proxy.inject((r) => r.url.includes('.knndid'), { kind: 'delay', ms: 4000 }, 10);
      const config: WorkerConfig = {
        storage: s3StoreSettings({ endpoint: proxy.endpoint, maxAttempts: 3 }),
        formatPolicy: 'compatible',
        threads: 1,
        gpu: { memoryLimitBytes: 2 ** 30, knnAlgorithm: 'auto' },
        logLevel: 'silent',
      };
      const run = await runWorker({ type: 'start', jobId: 'j', request, builder: 'cpu', config });

      expect(run.messages.at(-1)).toMatchObject({ type: 'ready', rssBytes: expect.any(Number) });
      expect(run.messages.at(-2)).toMatchObject({
        type: 'failed',
        message: expect.stringMatching(/access denied \(HTTP 403\)/),
      });
      expect(run.stderr).not.toMatch(/ERR_IPC_CHANNEL_CLOSED|Error/);
      expect([run.code, run.signal]).toEqual([0, null]);
      const ids = proxy.log.filter((r) => r.url.includes('.knndid'));
      expect(ids.length).toBeGreaterThan(0);
      expect(ids.every((r) => r.aborted)).toBe(true); // cut short, not left to run for 4 s
      expect(run.ms).toBeLessThan(4000);
    });
  },
);
