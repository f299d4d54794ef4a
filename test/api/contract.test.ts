// The service as k-NN's strict client sees it: exact bodies, exact statuses, ids, 404s and retries.
import { createHash } from 'node:crypto';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { KnnClient, KnnClientError, knnBuildBody } from '../helpers/knn-client.js';
import { type TestService, startTestService } from '../helpers/service.js';

describe('k-NN contract', () => {
  let t: TestService;
  let client: KnnClient;
  beforeEach(async () => {
    t = await startTestService();
    client = new KnnClient({ endpoint: t.url, maxRetryWaitMs: 50 });
  });
  afterEach(async () => t.close());

  it('answers a build with exactly {"job_id"} = sha256(JSON [vector_path, tenant_id])', async () => {
    const body = knnBuildBody();
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json; charset=UTF-8' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    const json = (await res.json()) as Record<string, unknown>;
    const expected = createHash('sha256')
      .update(JSON.stringify([body.vector_path, body.tenant_id]))
      .digest('hex');
    expect(json).toEqual({ job_id: expected });
  });

  it('reports RUNNING while queued/running, then COMPLETED with the bare .faiss name', async () => {
    const id = await client.build(knnBuildBody());
    const running = await fetch(`${t.url}/_status/${id}`);
    expect(await running.json()).toEqual({
      task_status: 'RUNNING_INDEX_BUILD',
      file_name: null,
      error_message: null,
    });
    await t.builds.started(1);
    t.builds.complete(id);
    const done = await client.poll(id);
    expect(done).toEqual({
      task_status: 'COMPLETED_INDEX_BUILD',
      file_name: 'Q2F0_my_field__3l.faiss',
      error_message: null,
    });
  });

  it('reports FAILED with the error message and no file name', async () => {
    const id = await client.build(knnBuildBody());
    await t.builds.started(1);
    t.builds.fail(id, 'vectors blob has 100 bytes, expected 3072000 (doc_count 1000 x dimension 768 x 4)');
    const s = await client.poll(id);
    expect(s.task_status).toBe('FAILED_INDEX_BUILD');
    expect(s.file_name).toBeNull();
    expect(s.error_message).toMatch(/expected 3072000/);
  });

  it('status bodies never carry a field beyond the three k-NN knows, in any state', async () => {
    const id = await client.build(knnBuildBody());
    const keysOf = async () =>
      Object.keys((await (await fetch(`${t.url}/_status/${id}`)).json()) as object).sort();
    expect(await keysOf()).toEqual(['error_message', 'file_name', 'task_status']);
    await t.builds.started(1);
    t.builds.complete(id);
    await client.poll(id);
    expect(await keysOf()).toEqual(['error_message', 'file_name', 'task_status']);
  });

  it('answers 404 {"detail":"Job not found"} for an unknown id, which ends the client', async () => {
    const res = await fetch(`${t.url}/_status/${'0'.repeat(64)}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ detail: 'Job not found' });
    await expect(client.status('f'.repeat(64))).rejects.toBeInstanceOf(KnnClientError);
    expect(client.attempts).toHaveLength(1); // 404 is not retried
  });

  it('answers the heart beat and lists jobs as a JSON object (not a double-encoded string)', async () => {
    expect(await (await fetch(`${t.url}/_heart_beat`)).json()).toEqual({ status: 'ok' });
    const id = await client.build(knnBuildBody());
    const jobs = (await (await fetch(`${t.url}/_jobs`)).json()) as {
      count: number;
      jobs: { job_id: string; phase: string }[];
    };
    expect(typeof jobs).toBe('object');
    expect(jobs.count).toBe(1);
    expect(jobs.jobs[0]!.job_id).toBe(id);
  });

  it('the client model retries once on 503 honouring Retry-After, and not at all on 507', async () => {
    await t.service.scheduler.shutdown(0);
    await expect(client.build(knnBuildBody())).rejects.toMatchObject({ httpStatus: 503 });
    expect(client.attempts.map((a) => a.status)).toEqual([503, 503]);
    const small = new KnnClient({ endpoint: t.url });
    const t2 = await startTestService({ CPU_MEMORY_LIMIT: '0.5' });
    try {
      const c2 = new KnnClient({ endpoint: t2.url });
      await expect(c2.build(knnBuildBody({ doc_count: 10_000_000 }))).rejects.toMatchObject({
        httpStatus: 507,
      });
      expect(c2.attempts.map((a) => a.status)).toEqual([507]);
    } finally {
      await t2.close();
    }
    expect(small.attempts).toHaveLength(0);
  });
});
