// The local store's composed write: the bytes before, the range copied kernel-side from the source file with
// copy_file_range(2) (a reflink on XFS/btrfs; no bytes through user space), the bytes after. Where the kernel
// will not copy (EXDEV, EOPNOTSUPP, ENOSYS, EINVAL, or no addon) the range is written from memory instead and the
// result says why. The source must still be the version that was read: checked before and after the copy.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { optionalAddon } from '../builders/native.js';
import { slices } from './byte-ranges.js';
import { StorageError } from './errors.js';
import type { ComposeResult, ComposedObject, WriteOptions } from './types.js';

/** Copies `length` bytes between two open files, resolving with the bytes copied (fewer at the source's end). */
export type RangeCopier = (
  srcFd: number,
  srcOffset: number,
  dstFd: number,
  dstOffset: number,
  length: number,
) => Promise<number>;

/** Bytes per copy_file_range call: cancellation waits at most for one. */
const COPY_STEP_BYTES = 256 * 2 ** 20;
/** errno codes meaning "this file system will not copy this range", not "the copy failed". */
const NOT_SUPPORTED = new Set(['EXDEV', 'EOPNOTSUPP', 'ENOSYS', 'EINVAL', 'ENOTSUP']);

export function nativeRangeCopier(): RangeCopier | undefined {
  const addon = optionalAddon();
  return addon ? (...args) => addon.copyFileRange(...args) : undefined;
}

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
): Promise<ComposeResult> {
  const { signal, onProgress } = options;
  const { copy } = object;
  let position = 0;
  let sent = 0;
  const write = async (bytes: Uint8Array) => {
    signal?.throwIfAborted();
    await writeAll(out, bytes, position);
    position += bytes.byteLength;
    sent += bytes.byteLength;
    onProgress?.(position);
  };
  for (const piece of object.before) await write(piece);

  let source: FileHandle;
  try {
    source = await open(sourceFile, 'r');
  } catch (err) {
    throw await explainSource(err);
  }
  let reason: string | undefined = copier ? undefined : 'the native addon (copy_file_range) is not built';
  try {
    const checkUnchanged = async (when: string) => {
      const now = fileVersion(await source.stat({ bigint: true }));
      if (now !== copy.sourceVersion) {
        throw new StorageError(
          'Changed',
          `${sourceFile} changed ${when} (version ${now}, was ${copy.sourceVersion}); build again from the new vectors`,
          { location: copy.source },
        );
      }
    };
    await checkUnchanged('after it was read');
    let done = 0;
    while (done < copy.bytes && !reason) {
      signal?.throwIfAborted();
      const step = Math.min(COPY_STEP_BYTES, copy.bytes - done);
      let copied: number;
      try {
        copied = await copier!(source.fd, copy.start + done, out.fd, position, step);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!NOT_SUPPORTED.has(code)) throw err;
        reason = `the file system would not copy the range (copy_file_range: ${code})`;
        break;
      }
      if (copied !== step) {
        throw new StorageError('Changed', `${sourceFile} shrank while its bytes were copied`, {
          location: copy.source,
        });
      }
      done += copied;
      position += copied;
      onProgress?.(position);
    }
    if (reason) {
      // Write what was not copied from memory (done bytes were).
      for (const piece of slices(copy.local, done, copy.bytes)) await write(piece);
    }
    await checkUnchanged('while the index was written');
  } finally {
    await source.close();
  }
  for (const piece of object.after) await write(piece);
  return {
    bytes: position,
    bytesSent: sent,
    bytesCopied: position - sent,
    path: reason ? 'stream' : 'copy',
    ...(reason ? { reason } : {}),
  };
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let at = 0; at < bytes.byteLength;) {
    const { bytesWritten } = await handle.write(bytes, at, bytes.byteLength - at, position + at);
    at += bytesWritten;
  }
}
