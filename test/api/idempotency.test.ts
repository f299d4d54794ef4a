// A repeated POST finds the same job and starts nothing, unless that job FAILED: then it is rebuilt under the
// same id (a client retry after a transient fault must not be stuck with the old failure).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { KnnClient, knnBuildBody } from '../helpers/knn-client.js';
import { type TestService, startTestService } from '../helpers/service.js';
import { jobSpecFor } from '../helpers/job-spec.js';

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
    await t.builds.started(1);
    t.builds.complete(a); // while it runs, the other tenant's build of the same file is refused (below)
    await client.poll(a);
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

  it('runs a cancelled-while-queued job that is sent again exactly once (its stale queue entry does nothing)', async () => {
    await t.close();
    t = await startTestService({ MAX_WORKERS: '2' });
    client = new KnnClient({ endpoint: t.url, maxRetryWaitMs: 20 });
    const blockers = [
      await client.build(knnBuildBody({ vector_path: 'p/a.knnvec' })),
      await client.build(knnBuildBody({ vector_path: 'p/b.knnvec' })),
    ];
    await t.builds.started(2);
    const queued = await client.build(knnBuildBody());
    expect((await fetch(`${t.url}/_jobs/${queued}`, { method: 'DELETE' })).status).toBe(200);
    expect(await client.build(knnBuildBody())).toBe(queued);

    // Both worker slots free up: the stale entry (attempt 1) and the new one (attempt 2) both reach the front.
    t.builds.complete(blockers[0]!);
    t.builds.complete(blockers[1]!);
    await t.builds.started(3);
    await new Promise((r) => setTimeout(r, 100)); // a stale entry would have started a second build by now
    expect(t.builds.calls.filter((c) => c.id === queued).map((c) => c.attempt)).toEqual([2]);
    t.builds.complete(queued);
    expect((await client.poll(queued)).task_status).toBe('COMPLETED_INDEX_BUILD');
  });

  it('gives vector_path/tenant_id pairs that join to the same text different jobs', async () => {
    const a = await client.build(knnBuildBody({ vector_path: 'seg/s1.knnvec', tenant_id: 'a.knnvec-b' }));
    const b = await client.build(knnBuildBody({ vector_path: 'seg/s1.knnvec-a.knnvec', tenant_id: 'b' }));
    expect(a).not.toBe(b);
    expect(t.service.store.get(b)!.spec.vectorPath).toBe('seg/s1.knnvec-a.knnvec');
  });

  it('answers 409 naming vector_path when an id is held by another vector_path (a hash collision)', async () => {
    const body = jobSpecFor({ vector_path: 'seg/theirs.knnvec' });
    const id = await client.build(knnBuildBody());
    // The job under this id is made to belong to another path, as a collision would leave it.
    t.service.store.get(id)!.spec = { ...t.service.store.get(id)!.spec, vectorPath: body.vectorPath };
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(knnBuildBody()),
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/vector_path: "seg\/theirs.knnvec" vs/);
  });

  it('refuses (409) a second tenant writing the same .faiss while the first job is unfinished', async () => {
    const a = await client.build(knnBuildBody({ tenant_id: 'cluster-a' }));
    await t.builds.started(1);
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(knnBuildBody({ tenant_id: 'cluster-b' })),
    });
    expect(res.status).toBe(409);
    const detail = ((await res.json()) as { detail: string }).detail;
    expect(detail).toContain(`job ${a} (tenant_id "cluster-a") is still building`);
    expect(detail).toMatch(/send it again when that job has finished/);
    expect(t.builds.calls).toHaveLength(1);

    t.builds.complete(a);
    await client.poll(a);
    const b = await client.build(knnBuildBody({ tenant_id: 'cluster-b' }));
    expect(b).not.toBe(a);
    await t.builds.started(2);
  });
});
