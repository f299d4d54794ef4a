// The local store's composed write: the range copied from the source file to its final offset by the addon's
// threads (a reflink where offsets are block-aligned, else copy_file_range(2) over disjoint chunks, else pread +
// pwrite: local-io.ts), then the bytes before and after it (which may be made while the range copies:
// ObjectStore.startComposed), written in large gathered writes. Where there is no addon, or a copier refuses
// (EXDEV, EOPNOTSUPP, ENOSYS, EINVAL), the range is written from memory instead and the result says why. The
// source must still be the version that was read: checked before and after the copy. A middle of our own bytes
// (SentRange: converted vectors no file holds) is written from memory at its offset at once, and its writeback
// started (fdatasync) while the caller still makes the rest.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { slices } from './byte-ranges.js';
import { StorageError } from './errors.js';
import { GatheredWriter, type RangeCopier } from './local-io.js';
import type {
  ComposeResult,
  ComposedEnds,
  ComposedObject,
  ComposedPlan,
  CopyRange,
  SentRange,
  WriteOptions,
} from './types.js';

export { nativeRangeCopier, type RangeCopier } from './local-io.js';

/** errno codes meaning "this file system will not copy this range", not "the copy failed". */
const NOT_SUPPORTED = new Set(['EXDEV', 'EOPNOTSUPP', 'ENOSYS', 'EINVAL', 'ENOTSUP']);

/** A file's version as far as a reader can tell: size, modification and change times (ns), inode. */
export function fileVersion(info: BigIntStats): string {
  return `${info.size}:${info.mtimeNs}:${info.ctimeNs}:${info.ino}`;
}

/** Where the copied range comes from: the source file, its copier, and how to name it in errors. */
export interface CopySource {
  readonly range: CopyRange;
  readonly file: string;
  readonly copier: RangeCopier | undefined;
  readonly explain: (err: unknown) => Promise<StorageError>;
  /** Names the source in the addon's errors (never a server path). */
  readonly label?: string;
}

/**
 * Fills `out`: the middle first, at its final offset `plan.beforeBytes` (while the caller may still be making the
 * rest): the source's range copied, or bytes of ours written (`sent`); then, once `ends` arrives, the bytes before
 * and after it. `copied` is called when the middle is in place.
 */
export async function composeIntoFile(
  out: FileHandle,
  middle: { source: CopySource; sent?: undefined } | { sent: SentRange; source?: undefined },
  plan: ComposedPlan,
  ends: Promise<ComposedEnds>,
  options: WriteOptions,
  copied: () => void = () => undefined,
): Promise<ComposeResult> {
  const { signal, onProgress } = options;
  let done = 0; // bytes of the object in place
  let sent = 0; // of which written from memory
  const writeAt = async (pieces: Iterable<Uint8Array>, at: number): Promise<number> => {
    const writer = new GatheredWriter(out, at);
    for (const piece of pieces) {
      signal?.throwIfAborted();
      const before = writer.position;
      await writer.add(piece);
      done += writer.position - before;
      onProgress?.(done);
    }
    const before = writer.position;
    await writer.flush();
    done += writer.position - before;
    onProgress?.(done);
    sent += writer.position - at;
    return writer.position - at;
  };
  const at = plan.beforeBytes;
  let reason: string | undefined;
  if (middle.sent) {
    reason = middle.sent.sent;
    await writeAt(slices(middle.sent.local, 0, middle.sent.bytes), at);
    // Its writeback starts now, while the caller still makes the rest: the final fsync has less to wait for.
    await out.datasync();
    copied();
    await writeEnds(writeAt, await ends, plan);
  } else {
    const { range: copy, copier, explain, label } = middle.source;
    const name = label ?? middle.source.file;
    let source: FileHandle;
    try {
      source = await open(middle.source.file, 'r');
    } catch (err) {
      throw await explain(err);
    }
    reason = copier ? undefined : 'the native addon (copy_file_range) is not built';
    try {
      const checkUnchanged = async (when: string) => {
        const now = fileVersion(await source.stat({ bigint: true }));
        if (now !== copy.sourceVersion) {
          throw new StorageError(
            'Changed',
            `${name} changed ${when} (version ${now}, was ${copy.sourceVersion}); build again from the new vectors`,
            { location: copy.source },
          );
        }
      };
      await checkUnchanged('after it was read');
      if (copier) {
        try {
          const result = await copier(source.fd, copy.start, out.fd, at, copy.bytes, {
            signal,
            onProgress: (bytes) => onProgress?.(done + bytes),
            ...(label !== undefined ? { label } : {}),
          });
          if (result.bytes !== copy.bytes) throw shrankWhileCopied(name, copy.source);
          done += result.bytes;
          onProgress?.(done);
          if (result.method === 'pread/pwrite') {
            // Copied through this process's memory after all: say so, and count the bytes as written by us.
            reason = `${result.reason ?? 'copy_file_range was not used'}: the range was copied with pread + pwrite`;
            sent += result.bytes;
          }
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? '';
          signal?.throwIfAborted();
          if (code === 'ESHRANK') throw shrankWhileCopied(name, copy.source);
          if (!NOT_SUPPORTED.has(code)) throw err;
          reason = `the file system would not copy the range (copy_file_range: ${code})`;
          // Written from memory instead (a refusing copier copied nothing that counts: all is written again).
          await writeAt(slices(await copy.local, 0, copy.bytes), at);
        }
      } else {
        await writeAt(slices(await copy.local, 0, copy.bytes), at);
      }
      copied();
      await writeEnds(writeAt, await ends, plan);
      await checkUnchanged('while the index was written');
    } finally {
      await source.close();
    }
  }
  const bytes = plan.beforeBytes + plan.copy.bytes + plan.afterBytes;
  return {
    bytes,
    bytesSent: sent,
    bytesCopied: bytes - sent,
    path: reason ? 'stream' : 'copy',
    ...(reason ? { reason } : {}),
  };
}

/** Writes the bytes before and after the middle, which must be exactly the planned sizes. */
async function writeEnds(
  writeAt: (pieces: Iterable<Uint8Array>, at: number) => Promise<number>,
  { before, after }: ComposedEnds,
  plan: ComposedPlan,
): Promise<void> {
  const wrote = {
    before: await writeAt(before, 0),
    after: await writeAt(after, plan.beforeBytes + plan.copy.bytes),
  };
  for (const side of ['before', 'after'] as const) {
    const planned = side === 'before' ? plan.beforeBytes : plan.afterBytes;
    if (wrote[side] !== planned) {
      throw new Error(`the bytes ${side} the copied range are ${wrote[side]}, planned ${planned}`);
    }
  }
}

function shrankWhileCopied(name: string, location: ComposedObject['copy']['source']): StorageError {
  return new StorageError(
    'Changed',
    `${name} changed while its bytes were copied (it shrank); build again from the new vectors`,
    { location },
  );
}
