// The job store: TTL counted from completion, unfinished jobs never evicted or expired, 507 when full of them.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { Job, jobIdFor } from '../../src/jobs/job.js';
import { JobStore } from '../../src/jobs/job-store.js';
import { JobRefusedError } from '../../src/jobs/errors.js';
import { jobSpecFor } from '../helpers/job-spec.js';

const spec = (i: number) => ({ ...jobSpecFor(), vectorPath: `p/${i}.knnvec`, tenantId: 't' });
const plan = { builder: 'cpu' as const, hostBytes: 1, gpuBytes: 0, reason: 'test' };
const job = (i: number) => new Job(jobIdFor(`p/${i}.knnvec`, 't'), spec(i), plan, Date.now());

function finish(store: JobStore, j: Job): void {
  j.status = 'COMPLETED_INDEX_BUILD';
  j.fileName = 'x.faiss';
  store.markFinished(j);
}

describe('JobStore', () => {
  beforeEach(() => vi.useFakeTimers({ now: new Date('2026-11-27T00:00:00Z') }));
  afterEach(() => vi.useRealTimers());

  it('expires a finished job TTL seconds after it finished, not after it was created', () => {
    const store = new JobStore({ maxSize: 10, ttlMs: 1800_000, now: () => Date.now() });
    const j = job(1);
    store.add(j);
    vi.advanceTimersByTime(3600_000); // an hour of building: longer than the TTL
    expect(store.get(j.id)).toBe(j);
    finish(store, j);
    vi.advanceTimersByTime(1799_000);
    expect(store.get(j.id)).toBe(j); // polling does not extend its life either
    vi.advanceTimersByTime(2_000);
    expect(store.get(j.id)).toBeUndefined();
  });

  it('never expires or evicts a queued or running job', () => {
    const store = new JobStore({ maxSize: 3, ttlMs: 1000, now: () => Date.now() });
    const running = [job(1), job(2)];
    running.forEach((j) => store.add(j));
    vi.advanceTimersByTime(10 * 24 * 3600_000);
    const done = job(3);
    store.add(done);
    finish(store, done);
    // Full: the next job evicts the finished one, never a running one.
    store.add(job(4));
    expect(store.get(done.id)).toBeUndefined();
    for (const j of running) expect(store.get(j.id)).toBe(j);
  });

  it('evicts the least recently used finished job to make room', () => {
    const store = new JobStore({ maxSize: 2, ttlMs: 1_000_000, now: () => Date.now() });
    const [a, b] = [job(1), job(2)];
    store.add(a);
    finish(store, a);
    store.add(b);
    finish(store, b);
    store.get(a.id); // a is now more recently used than b
    store.add(job(3));
    expect(store.get(a.id)).toBe(a);
    expect(store.get(b.id)).toBeUndefined();
  });

  it('refuses with STORE_FULL (507) when every slot holds an unfinished job', () => {
    const store = new JobStore({ maxSize: 2, ttlMs: 1000, now: () => Date.now() });
    store.add(job(1));
    store.add(job(2));
    expect(() => store.add(job(3))).toThrow(JobRefusedError);
    try {
      store.add(job(3));
    } catch (e) {
      expect((e as JobRefusedError).code).toBe('STORE_FULL');
      expect((e as Error).message).toMatch(/REQUEST_STORE_MAX_SIZE=2/);
    }
  });

  it('purgeExpired drops expired jobs without anyone asking for them', () => {
    const store = new JobStore({ maxSize: 10, ttlMs: 1000, now: () => Date.now() });
    const j = job(1);
    store.add(j);
    finish(store, j);
    vi.advanceTimersByTime(1500);
    store.purgeExpired();
    expect(store.size).toBe(0);
  });
});
