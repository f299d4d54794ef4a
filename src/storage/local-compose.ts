// The local store's composed write: the bytes before, the range copied from the source file by the addon's threads
// (a reflink where offsets are block-aligned, else copy_file_range(2) over disjoint chunks, else pread + pwrite:
// local-io.ts), the bytes after, written in large gathered writes. Where there is no addon, or a copier refuses
// (EXDEV, EOPNOTSUPP, ENOSYS, EINVAL), the range is written from memory instead and the result says why. The
// source must still be the version that was read: checked before and after the copy.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { slices } from './byte-ranges.js';
import { StorageError } from './errors.js';
import { GatheredWriter, type RangeCopier } from './local-io.js';
import type { ComposeResult, ComposedObject, WriteOptions } from './types.js';

export { nativeRangeCopier, type RangeCopier } from './local-io.js';

/** errno codes meaning "this file system will not copy this range", not "the copy failed". */
const NOT_SUPPORTED = new Set(['EXDEV', 'EOPNOTSUPP', 'ENOSYS', 'EINVAL', 'ENOTSUP']);

/** A file's version as far as a reader can tell: size, modification and change times (ns), inode. */
export function fileVersion(info: BigIntStats): string {
  return `${info.size}:${info.mtimeNs}:${info.ctimeNs}:${info.ino}`;
}

export async function composeIntoFile(
  out: FileHandle,
  sourceFile: string,
  object: ComposedObject,
  options: WriteOptions,
  copier: RangeCopier | undefined,
  explainSource: (err: unknown) => Promise<StorageError>,
  /** Names the source in the addon's errors (never a server path). */
  label?: string,
): Promise<ComposeResult> {
  const { signal, onProgress } = options;
  const { copy } = object;
  const writer = new GatheredWriter(out, 0);
  let sent = 0;
  const write = async (pieces: Iterable<Uint8Array>) => {
    for (const piece of pieces) {
      signal?.throwIfAborted();
      await writer.add(piece);
      sent += piece.byteLength;
      onProgress?.(writer.position);
    }
    await writer.flush();
    onProgress?.(writer.position);
  };
  await write(object.before);

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
    if (copier) {
      const at = writer.position;
      try {
        const result = await copier(source.fd, copy.start, out.fd, at, copy.bytes, {
          signal,
          onProgress: (done) => onProgress?.(at + done),
          ...(label !== undefined ? { label } : {}),
        });
        if (result.bytes !== copy.bytes) throw shrankWhileCopied(name, copy.source);
        writer.position += result.bytes;
        onProgress?.(writer.position);
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
        writer.position = at;
        await write(slices(copy.local, 0, copy.bytes));
      }
    } else {
      await write(slices(copy.local, 0, copy.bytes));
    }
    await checkUnchanged('while the index was written');
  } finally {
    await source.close();
  }
  await write(object.after);
  return {
    bytes: writer.position,
    bytesSent: sent,
    bytesCopied: writer.position - sent,
    path: reason ? 'stream' : 'copy',
    ...(reason ? { reason } : {}),
  };
}

function shrankWhileCopied(name: string, location: ComposedObject['copy']['source']): StorageError {
  return new StorageError('Changed', `${name} shrank while its bytes were copied`, { location });
}
