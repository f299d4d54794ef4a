// Memory admission: 507 for a job that can never fit, waiting (not failing) for one that fits later,
// a store full of unfinished jobs, MAX_WORKERS, and _status staying fast while builds run and many wait.
import { afterEach, describe, expect, it } from 'vitest';

import { estimateHostBytes } from '../../src/jobs/plan.js';
import { jobSpecFor } from '../helpers/job-spec.js';
import { KnnClient, knnBuildBody } from '../helpers/knn-client.js';
import { type TestService, startTestService } from '../helpers/service.js';

const GIB = 2 ** 30;
let t: TestService | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const bodyFor = (i: number, docCount: number) =>
  knnBuildBody({
    vector_path: `p/${i}.knnvec`,
    doc_id_path: `p/${i}.knndid`,
    doc_count: docCount,
    dimension: 768,
  });

describe('memory admission', () => {
  it('answers 507 naming the limit when a build can never fit CPU_MEMORY_LIMIT', async () => {
    t = await startTestService({ CPU_MEMORY_LIMIT: '1' });
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(bodyFor(1, 5_000_000)),
    });
    expect(res.status).toBe(507);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/CPU_MEMORY_LIMIT/);
    expect(t.service.store.size).toBe(0);
  });

  it('answers 507 with BUILDER=gpu when the job needs more than GPU_MEMORY_LIMIT', async () => {
    t = await startTestService({ BUILDER: 'gpu', GPU_MEMORY_LIMIT: '1' }, 1);
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(bodyFor(1, 2_000_000)),
    });
    expect(res.status).toBe(507);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/GPU memory/);
  });

  it('lets a job that fits later wait in the queue until memory is free (the reference fails it)', async () => {
    const docCount = 400_000;
    const need = estimateHostBytes(jobSpecFor(bodyFor(0, docCount)), 'cpu');
    // Room for one such job but not two, and enough workers for both.
    t = await startTestService({ CPU_MEMORY_LIMIT: String((need * 1.5) / GIB), MAX_WORKERS: '4' });
    const client = new KnnClient({ endpoint: t.url });
    const a = await client.build(bodyFor(1, docCount));
    const b = await client.build(bodyFor(2, docCount));
    await t.builds.started(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(t.builds.calls).toHaveLength(1);
    expect((await client.status(b)).task_status).toBe('RUNNING_INDEX_BUILD');
    const jobs = (await (await fetch(`${t.url}/_jobs`)).json()) as {
      jobs: { job_id: string; phase: string }[];
    };
    expect(jobs.jobs.find((j) => j.job_id === b)!.phase).toBe('queued');
    t.builds.complete(a);
    await t.builds.started(2);
    expect(t.builds.calls[1]!.id).toBe(b);
    t.builds.complete(b);
    expect((await client.poll(b)).task_status).toBe('COMPLETED_INDEX_BUILD');
  });

  it('answers 507 when the store is full of unfinished jobs', async () => {
    t = await startTestService({ REQUEST_STORE_MAX_SIZE: '3', MAX_WORKERS: '1' });
    const client = new KnnClient({ endpoint: t.url });
    for (let i = 0; i < 3; i++) await client.build(bodyFor(i, 100));
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(bodyFor(9, 100)),
    });
    expect(res.status).toBe(507);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/job store is full/);
  });
});

describe('queue', () => {
  it('runs MAX_WORKERS builds at once and answers _status fast while many more wait', async () => {
    t = await startTestService({ MAX_WORKERS: '2' });
    const client = new KnnClient({ endpoint: t.url });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await client.build(bodyFor(i, 1000)));
    await t.builds.started(2);

    // Every job answers (queued ones as RUNNING: the protocol has no queued state), polled concurrently.
    const statuses = await Promise.all(ids.flatMap((id) => [client.status(id), client.status(id)]));
    expect(statuses.every((s) => s.task_status === 'RUNNING_INDEX_BUILD')).toBe(true);

    const jobs = (await (await fetch(`${t.url}/_jobs`)).json()) as { queued: number; running: number };
    expect(jobs).toMatchObject({ queued: 38, running: 2 });
    expect(t.builds.maxRunning).toBe(2);

    for (let done = 0; done < ids.length; done++) {
      await t.builds.started(Math.min(ids.length, done + 2));
      t.builds.complete(t.builds.calls[done]!.id);
    }
    for (const id of ids) expect((await client.poll(id)).task_status).toBe('COMPLETED_INDEX_BUILD');
    expect(t.builds.maxRunning).toBe(2);
    // Jobs started in the order they arrived.
    expect(t.builds.calls.map((c) => c.id)).toEqual(ids);
  });

  it('fails a job that waited longer than MAX_QUEUE_WAIT_SECONDS instead of building it for nobody', async () => {
    t = await startTestService({ MAX_WORKERS: '1', MAX_QUEUE_WAIT_SECONDS: '1' });
    const client = new KnnClient({ endpoint: t.url });
    const a = await client.build(bodyFor(1, 1000));
    const b = await client.build(bodyFor(2, 1000));
    await t.builds.started(1);
    await new Promise((r) => setTimeout(r, 1300));
    t.builds.complete(a);
    const status = await client.poll(b);
    expect(status.task_status).toBe('FAILED_INDEX_BUILD');
    expect(status.error_message).toMatch(/waited \d+ s in the queue, over MAX_QUEUE_WAIT_SECONDS \(1 s\)/);
    expect(t.builds.calls).toHaveLength(1);
    expect((await client.status(a)).task_status).toBe('COMPLETED_INDEX_BUILD');
  });
});
