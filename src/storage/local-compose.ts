// The local store's composed write: the range copied from the source file to its final offset by the addon's
// threads (a reflink where offsets are block-aligned, else copy_file_range(2) over disjoint chunks, else pread +
// pwrite: local-io.ts), then the bytes before and after it (which may be made while the range copies:
// ObjectStore.startComposed), written in large gathered writes. Where there is no addon, or a copier refuses
// (EXDEV, EOPNOTSUPP, ENOSYS, EINVAL), the range is written from memory instead and the result says why. The
// source must still be the version that was read: checked before and after the copy.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { slices } from './byte-ranges.js';
import { StorageError } from './errors.js';
import { GatheredWriter, type RangeCopier } from './local-io.js';
import type { ComposeResult, ComposedEnds, ComposedObject, ComposedPlan, WriteOptions } from './types.js';

export { nativeRangeCopier, type RangeCopier } from './local-io.js';

/** errno codes meaning "this file system will not copy this range", not "the copy failed". */
const NOT_SUPPORTED = new Set(['EXDEV', 'EOPNOTSUPP', 'ENOSYS', 'EINVAL', 'ENOTSUP']);

/** A file's version as far as a reader can tell: size, modification and change times (ns), inode. */
export function fileVersion(info: BigIntStats): string {
  return `${info.size}:${info.mtimeNs}:${info.ctimeNs}:${info.ino}`;
}

/**
 * Fills `out`: the range first, at its final offset `plan.beforeBytes` (while the caller may still be making the
 * rest), then, once `ends` arrives, the bytes before and after it. `copied` is called when the range is in place.
 */
export async function composeIntoFile(
  out: FileHandle,
  sourceFile: string,
  plan: ComposedPlan,
  ends: Promise<ComposedEnds>,
  options: WriteOptions,
  copier: RangeCopier | undefined,
  explainSource: (err: unknown) => Promise<StorageError>,
  /** Names the source in the addon's errors (never a server path). */
  label?: string,
  copied: () => void = () => undefined,
): Promise<ComposeResult> {
  const { signal, onProgress } = options;
  const { copy } = plan;
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

  let source: FileHandle;
  try {
    source = await open(sourceFile, 'r');
  } catch (err) {
    throw await explainSource(err);
  }
  const name = label ?? sourceFile;
  let reason: string | undefined = copier ? undefined : 'the native addon (copy_file_range) is not built';
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
    const at = plan.beforeBytes;
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
    const { before, after } = await ends;
    const wrote = {
      before: await writeAt(before, 0),
      after: await writeAt(after, at + copy.bytes),
    };
    for (const side of ['before', 'after'] as const) {
      const planned = side === 'before' ? plan.beforeBytes : plan.afterBytes;
      if (wrote[side] !== planned) {
        throw new Error(`the bytes ${side} the copied range are ${wrote[side]}, planned ${planned}`);
      }
    }
    await checkUnchanged('while the index was written');
  } finally {
    await source.close();
  }
  const bytes = plan.beforeBytes + copy.bytes + plan.afterBytes;
  return {
    bytes,
    bytesSent: sent,
    bytesCopied: bytes - sent,
    path: reason ? 'stream' : 'copy',
    ...(reason ? { reason } : {}),
  };
}

function shrankWhileCopied(name: string, location: ComposedObject['copy']['source']): StorageError {
  return new StorageError('Changed', `${name} shrank while its bytes were copied`, { location });
}
