// Retries with exponential backoff and full jitter, abortable at every step.
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

/** 'retry': transient (5xx, reset, timeout, short body); 'throttle': the server asked us to slow down. */
export type RetryKind = 'fatal' | 'retry' | 'throttle';

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
}

const MAX_DELAY_MS = 20_000;
const THROTTLE_FACTOR = 5;

/** Thrown when every attempt failed with a retryable error; `last` is the final one. */
export class RetriesExhausted extends Error {
  override readonly name = 'RetriesExhausted';
  constructor(
    readonly last: unknown,
    readonly attempts: number,
  ) {
    super(`gave up after ${attempts} attempts`, { cause: last });
  }
}

/** Wait before attempt `attempt + 1`: uniform in [0, min(cap, base * 2^(attempt-1))] (x5 when throttled). */
export function backoffMs(attempt: number, kind: RetryKind, policy: RetryPolicy): number {
  const base = policy.baseDelayMs * (kind === 'throttle' ? THROTTLE_FACTOR : 1);
  return Math.random() * Math.min(MAX_DELAY_MS, base * 2 ** (attempt - 1));
}

/**
 * Runs `attempt` until it succeeds, fails fatally, or `policy.maxAttempts` attempts failed (RetriesExhausted).
 * An aborted signal stops at once with the signal's reason.
 */
export async function withRetries<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: RetryPolicy,
  classify: (err: unknown) => RetryKind,
  signal?: AbortSignal,
): Promise<T> {
  for (let n = 1; ; n++) {
    signal?.throwIfAborted();
    try {
      return await attempt(n);
    } catch (err) {
      signal?.throwIfAborted();
      const kind = classify(err);
      if (kind === 'fatal') throw err;
      if (n >= policy.maxAttempts) throw new RetriesExhausted(err, n);
      await sleep(backoffMs(n, kind, policy), undefined, { signal });
    }
  }
}

/**
 * A signal for work shared by several tasks: it aborts when `parent` does (AbortSignal.any) or when `abort` is
 * called (the first task that fails stops the others). Each task in flight listens to it: not a leak.
 */
export function linkedAbort(parent: AbortSignal | undefined): {
  readonly signal: AbortSignal;
  abort(reason: unknown): void;
} {
  const own = new AbortController();
  const signal = parent ? AbortSignal.any([parent, own.signal]) : own.signal;
  setMaxListeners(0, signal);
  return { signal, abort: (reason) => own.abort(reason) };
}
