// Where jobs live. Unfinished jobs sit in a plain map and are never evicted or expired (a client may be
// polling them); finished jobs move to a TTL LRU cache whose time-to-live counts from when they finished.
import { LRUCache } from 'lru-cache';

import { JobRefusedError } from './errors.js';
import type { Job } from './job.js';

export interface JobStoreOptions {
  /** Jobs held at most, unfinished and finished together. */
  maxSize: number;
  /** How long a finished job stays answerable, from when it finished. */
  ttlMs: number;
  /** Clock (ms); tests pass a fake one. */
  now?: () => number;
}

export class JobStore {
  private readonly active = new Map<string, Job>();
  private readonly finished: LRUCache<string, Job>;
  private readonly maxSize: number;

  constructor(options: JobStoreOptions) {
    this.maxSize = options.maxSize;
    const now = options.now ?? Date.now;
    this.finished = new LRUCache<string, Job>({
      max: options.maxSize,
      ttl: options.ttlMs,
      // Polling a finished job must not extend its life: TTL counts from completion only.
      updateAgeOnGet: false,
      updateAgeOnHas: false,
      allowStale: false,
      perf: { now },
    });
  }

  get(id: string): Job | undefined {
    return this.active.get(id) ?? this.finished.get(id);
  }

  /**
   * Adds a new (or restarted) unfinished job. When the store is full, the least recently used finished job
   * makes room; when every slot holds an unfinished job, the request is refused (507).
   */
  add(job: Job): void {
    if (this.active.size >= this.maxSize) {
      throw new JobRefusedError(
        'STORE_FULL',
        `the job store is full: ${this.active.size} jobs are queued or running (REQUEST_STORE_MAX_SIZE=${this.maxSize})`,
      );
    }
    this.finished.delete(job.id);
    this.finished.purgeStale();
    while (this.active.size + this.finished.size >= this.maxSize) this.finished.pop();
    this.active.set(job.id, job);
  }

  /** Moves a job that just finished to the TTL cache; its TTL starts now. */
  markFinished(job: Job): void {
    if (!this.active.delete(job.id)) return;
    this.finished.set(job.id, job);
  }

  unfinished(): Job[] {
    return [...this.active.values()];
  }

  /** Every answerable job: unfinished first, then finished (most recently used first). */
  all(): Job[] {
    this.finished.purgeStale();
    return [...this.active.values(), ...this.finished.values()];
  }

  /** Drops expired finished jobs (called periodically so memory is returned without polling). */
  purgeExpired(): void {
    this.finished.purgeStale();
  }

  get size(): number {
    return this.active.size + this.finished.size;
  }
}
