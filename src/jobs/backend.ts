// What the HTTP API asks of the place where jobs live: admit a build, read a job, list jobs, cancel one, and say
// whether it is reachable. Two implementations: this process alone (memory-backend.ts, the default) and Redis
// shared by many replicas through BullMQ (redis-backend.ts, QUEUE_BACKEND=redis).
import type { JobSpec } from '../build-spec.js';
import type { QueueBackendKind } from '../config.js';
import type { JobStatus, JobView } from './job.js';

export interface Admission {
  id: string;
  /** False when an existing job answered the request (a retry of a known build). */
  started: boolean;
}

export type CancelResult =
  { outcome: 'unknown' } | { outcome: 'finished'; job: JobView } | { outcome: 'cancelled'; job: JobView };

export interface BackendHealth {
  kind: QueueBackendKind;
  up: boolean;
  /** Why it is down (never holds credentials). */
  detail?: string;
  /** This replica's name (redis backend only). */
  replica?: string;
}

export interface JobBackend {
  readonly kind: QueueBackendKind;
  /** Admits a build or finds the job for it. Throws JobRefusedError or BackendUnavailableError. */
  submit(spec: JobSpec): Promise<Admission>;
  /** The k-NN status of a job (a final one counts as seen); undefined when no such job exists (or it expired). */
  status(id: string): Promise<JobStatus | undefined>;
  /** Every answerable job, unfinished first. */
  list(): Promise<JobView[]>;
  /** Fails a queued or running job with `reason`, wherever it runs. */
  cancel(id: string, reason: string): Promise<CancelResult>;
  health(): Promise<BackendHealth>;
  /** Stops taking jobs; running ones get `graceMs` to finish. */
  shutdown(graceMs: number): Promise<void>;
}

/** The shared job store cannot be reached: the API answers 503 (k-NN retries once, then builds on its own). */
export class BackendUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendUnavailableError';
  }
}
