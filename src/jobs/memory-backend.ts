// QUEUE_BACKEND=memory (the default): jobs live in this process (JobStore) and run on its scheduler.
import type { JobSpec } from '../build-spec.js';
import type { Admission, BackendHealth, CancelResult, JobBackend } from './backend.js';
import type { JobStore } from './job-store.js';
import type { JobScheduler } from './scheduler.js';

export class MemoryBackend implements JobBackend {
  readonly kind = 'memory' as const;

  constructor(
    private readonly store: JobStore,
    private readonly scheduler: JobScheduler,
  ) {}

  async submit(spec: JobSpec): Promise<Admission> {
    const { job, started } = this.scheduler.submit(spec);
    return { id: job.id, started };
  }

  async status(id: string) {
    return this.store.get(id)?.statusNow(true);
  }

  async list() {
    return this.store.all().map((j) => j.view());
  }

  async cancel(id: string, reason: string): Promise<CancelResult> {
    const job = this.store.get(id);
    if (!job) return { outcome: 'unknown' };
    const cancelled = this.scheduler.cancel(id, reason);
    return { outcome: cancelled ? 'cancelled' : 'finished', job: job.view() };
  }

  async health(): Promise<BackendHealth> {
    return { kind: 'memory', up: true };
  }

  shutdown(graceMs: number): Promise<void> {
    return this.scheduler.shutdown(graceMs);
  }
}
