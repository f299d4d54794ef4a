// The resources jobs wait for: the host-memory budget and the GPU pool (FIFO grants, release once, abort).
import { describe, expect, it } from 'vitest';

import { GpuPool, MemoryBudget } from '../../src/jobs/resources.js';

/** Resolves with whether `p` settled within the current macrotask turn. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('MemoryBudget', () => {
  it('grants in arrival order: a large waiter is not overtaken by a smaller one behind it', async () => {
    const budget = new MemoryBudget(100);
    const first = await budget.acquire(60);
    const large = budget.acquire(80);
    const small = budget.acquire(10);
    expect(await settled(large)).toBe(false);
    expect(await settled(small)).toBe(false); // 10 would fit, but the 80 came first
    expect(budget.tryAcquire(10)).toBeNull(); // nor may an immediate taker jump the queue
    first(); // 80 then 10: both fit now, granted in order
    const releaseLarge = await large;
    const releaseSmall = await small;
    expect(budget.inUse).toBe(90);
    releaseLarge();
    releaseSmall();
    expect(budget.inUse).toBe(0);
  });

  it('counts a release once, however often it is called', async () => {
    const budget = new MemoryBudget(10);
    const release = await budget.acquire(4);
    release();
    release();
    expect(budget.inUse).toBe(0);
    const a = budget.tryAcquire(10);
    expect(a).not.toBeNull();
    expect(budget.tryAcquire(1)).toBeNull();
  });

  it('refuses more than its capacity, and drops an aborted waiter so those behind it proceed', async () => {
    const budget = new MemoryBudget(10);
    await expect(budget.acquire(11)).rejects.toThrow(RangeError);
    const held = await budget.acquire(8);
    const abort = new AbortController();
    const big = budget.acquire(5, abort.signal);
    const next = budget.acquire(2);
    expect(await settled(next)).toBe(false);
    abort.abort(new Error('cancelled'));
    await expect(big).rejects.toThrow('cancelled');
    await next; // 8 + 2 fits once the aborted 5 is gone
    expect(budget.inUse).toBe(10);
    held();
    const aborted = new AbortController();
    aborted.abort(new Error('already'));
    await expect(budget.acquire(1, aborted.signal)).rejects.toThrow('already');
  });
});

describe('GpuPool', () => {
  it('leases each device to one job at a time and hands a released device to the next waiter', async () => {
    const pool = new GpuPool(2);
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(new Set([a.device, b.device])).toEqual(new Set([0, 1]));
    expect(pool.busy).toBe(2);
    const c = pool.acquire();
    expect(await settled(c)).toBe(false);
    a.release();
    a.release(); // once only: device 0 is not handed out twice
    expect((await c).device).toBe(a.device);
    expect(pool.busy).toBe(2);
    b.release();
    expect(pool.busy).toBe(1);
  });

  it('fails at once without devices, and an aborted wait takes no device', async () => {
    await expect(new GpuPool(0).acquire()).rejects.toThrow(/no GPU/);
    const pool = new GpuPool(1);
    const held = await pool.acquire();
    const abort = new AbortController();
    const waiting = pool.acquire(abort.signal);
    abort.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    held.release();
    expect(pool.busy).toBe(0);
    expect((await pool.acquire()).device).toBe(0);
  });
});
