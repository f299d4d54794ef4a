// A repeated POST finds the same job and starts nothing, unless that job FAILED: then it is rebuilt under the
// same id (a client retry after a transient fault must not be stuck with the old failure).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { KnnClient, knnBuildBody } from '../helpers/knn-client.js';
import { type TestService, startTestService } from '../helpers/service.js';

describe('idempotency and rebuild after failure', () => {
  let t: TestService;
  let client: KnnClient;
  beforeEach(async () => {
    t = await startTestService();
    client = new KnnClient({ endpoint: t.url, maxRetryWaitMs: 20 });
  });
  afterEach(async () => t.close());

  it('returns the same id for a repeated POST and runs the build once (running, then completed)', async () => {
    const id = await client.build(knnBuildBody());
    await t.builds.started(1);
    expect(await client.build(knnBuildBody())).toBe(id);
    t.builds.complete(id);
    await client.poll(id);
    expect(await client.build(knnBuildBody())).toBe(id);
    expect((await client.status(id)).task_status).toBe('COMPLETED_INDEX_BUILD');
    expect(t.builds.calls).toHaveLength(1);
  });

  it('gives different tenants different jobs for the same path', async () => {
    const a = await client.build(knnBuildBody({ tenant_id: 'cluster-a' }));
    const b = await client.build(knnBuildBody({ tenant_id: 'cluster-b' }));
    expect(a).not.toBe(b);
  });

  it('rebuilds a FAILED job under the same id when the client sends it again', async () => {
    const id = await client.build(knnBuildBody());
    await t.builds.started(1);
    t.builds.fail(id, 'connection reset while downloading');
    expect((await client.poll(id)).task_status).toBe('FAILED_INDEX_BUILD');

    expect(await client.build(knnBuildBody())).toBe(id);
    const restarted = await client.status(id);
    expect(restarted).toEqual({ task_status: 'RUNNING_INDEX_BUILD', file_name: null, error_message: null });
    await t.builds.started(2);
    expect(t.builds.calls[1]!.attempt).toBe(2);
    t.builds.complete(id);
    expect((await client.poll(id)).task_status).toBe('COMPLETED_INDEX_BUILD');
  });

  it('answers 409 naming the difference when the same id arrives with other parameters', async () => {
    await client.build(knnBuildBody());
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(knnBuildBody({ dimension: 384 })),
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/dimension: 768 vs 384/);
  });

  it('a cancelled job (DELETE /_jobs/{id}) ends FAILED "cancelled" and can be sent again', async () => {
    const id = await client.build(knnBuildBody());
    await t.builds.started(1);
    const del = await fetch(`${t.url}/_jobs/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await client.status(id)).toEqual({
      task_status: 'FAILED_INDEX_BUILD',
      file_name: null,
      error_message: 'cancelled',
    });
    expect(t.builds.isRunning(id)).toBe(false);
    expect((await fetch(`${t.url}/_jobs/${id}`, { method: 'DELETE' })).status).toBe(409);
    expect((await fetch(`${t.url}/_jobs/${'a'.repeat(64)}`, { method: 'DELETE' })).status).toBe(404);
    expect(await client.build(knnBuildBody())).toBe(id);
    await t.builds.started(2);
  });
});
