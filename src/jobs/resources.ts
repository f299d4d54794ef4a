// Shared resources jobs wait for: host memory (a byte budget) and GPUs (one job per device at a time).
// Both grant strictly in arrival order, so a large job is not starved by smaller ones behind it.

export type Release = () => void;

interface Waiter {
  amount: number;
  grant: (release: Release) => void;
  reject: (e: unknown) => void;
}

/** A FIFO counting semaphore over an amount (bytes, devices). */
class FifoBudget {
  private used = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Waits until `amount` is free (amount must not exceed capacity: admission checks that). */
  acquire(amount: number, signal?: AbortSignal): Promise<Release> {
    if (amount > this.capacity) {
      return Promise.reject(new RangeError(`asked for ${amount} of a budget of ${this.capacity}`));
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = { amount, grant: resolve, reject };
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener(
        'abort',
        () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) {
            this.waiters.splice(i, 1);
            reject(signal.reason);
            this.drain();
          }
        },
        { once: true },
      );
      this.waiters.push(waiter);
      this.drain();
    });
  }

  /** Takes `amount` at once when it is free and nobody waits before it; null otherwise (nothing taken). */
  tryAcquire(amount: number): Release | null {
    if (this.waiters.length > 0 || this.used + amount > this.capacity) return null;
    return this.take(amount);
  }

  private drain(): void {
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.amount <= this.capacity) {
      const w = this.waiters.shift()!;
      w.grant(this.take(w.amount));
    }
  }

  private take(amount: number): Release {
    this.used += amount;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= amount;
      this.drain();
    };
  }
}

/** Host memory shared by all running jobs (CPU_MEMORY_LIMIT). */
export class MemoryBudget extends FifoBudget {}

export interface GpuLease {
  readonly device: number;
  release: Release;
}

/** One build per GPU at a time: a job takes a lease for its build phase only. */
export class GpuPool {
  private readonly free: number[];
  private readonly slots: FifoBudget;

  constructor(readonly deviceCount: number) {
    this.free = Array.from({ length: deviceCount }, (_, i) => i);
    this.slots = new FifoBudget(deviceCount);
  }

  get busy(): number {
    return this.slots.inUse;
  }

  async acquire(signal?: AbortSignal): Promise<GpuLease> {
    if (this.deviceCount === 0) throw new Error('no GPU is available to this service');
    const releaseSlot = await this.slots.acquire(1, signal);
    const device = this.free.shift()!;
    let released = false;
    return {
      device,
      release: () => {
        if (released) return;
        released = true;
        this.free.push(device);
        releaseSlot();
      },
    };
  }
}
