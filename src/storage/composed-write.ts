// The common half of ObjectStore.startComposed: a write that begins with the copied range and is handed the bytes
// around it later (finish) or given up (abort). Each store supplies `run`, which copies at once, waits for `ends`
// for the rest, calls `copied` when the range's copy has ended, and cleans up on failure (its signal aborts).
import { linkedAbort } from './retry.js';
import type {
  ComposeResult,
  ComposedEnds,
  ComposedObject,
  ComposedPlan,
  ComposedWrite,
  WriteOptions,
} from './types.js';

export type ComposeRun = (
  ends: Promise<ComposedEnds>,
  options: WriteOptions & { signal: AbortSignal },
  copied: () => void,
) => Promise<ComposeResult>;

export function composedWrite(options: WriteOptions, run: ComposeRun): ComposedWrite {
  const { signal, abort: giveUp } = linkedAbort(options.signal);
  let supply!: (ends: ComposedEnds) => void;
  let refuse!: (reason: unknown) => void;
  const ends = new Promise<ComposedEnds>((resolve, reject) => {
    supply = resolve;
    refuse = reject;
  });
  ends.catch(() => undefined); // a run that failed before asking for them
  let copied!: () => void;
  const copyEnded = new Promise<void>((resolve) => (copied = resolve));
  const done = run(ends, { ...options, signal }, copied);
  done.then(copied, copied); // whatever happened, the copy is over
  done.catch(() => undefined); // reported by finish(); until then nobody may be listening
  let settled = false;
  const once = (what: string) => {
    if (settled) throw new Error(`a composed write was already finished or aborted (${what})`);
    settled = true;
  };
  return {
    copyEnded,
    finish(parts) {
      once('finish');
      supply(parts);
      return done;
    },
    async abort(reason) {
      once('abort');
      const why = reason ?? new Error('the composed write was given up');
      giveUp(why);
      refuse(why);
      await done.catch(() => undefined);
    },
  };
}

/** writeComposed() as a composed write finished at once. */
export function composeNow(
  start: (plan: ComposedPlan) => ComposedWrite,
  object: ComposedObject,
): Promise<ComposeResult> {
  const { before, after, ...plan } = object;
  return start(plan).finish({ before, after });
}
