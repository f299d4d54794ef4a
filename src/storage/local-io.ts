// The local store's file transfers at the disk's rate: reads by the addon's threads (large preads straight into
// the blob, src/native/io/read_range.cpp), range copies by its threads (reflink / copy_file_range / pread+pwrite,
// copy_range.cpp), and writes gathered into large positioned writev calls. An AbortSignal becomes the addon's
// cancel flag; its promises settle only once every thread has stopped, so a cancelled transfer leaves nothing
// running. Without the addon, reads and copies fall back to Node's fs (the callers say so).
import type { FileHandle } from 'node:fs/promises';
import { optionalAddon } from '../builders/native.js';

/** Tuning for the addon's transfers (tests use small chunks to cross chunk boundaries; defaults are native). */
export interface TransferTuning {
  readonly threads?: number;
  readonly chunkBytes?: number;
  /** Reads: advise transparent huge pages on the fresh target memory (default true; see read_range.cpp). */
  readonly hugePages?: boolean;
  /** Reads: O_DIRECT through aligned buffers (default false: it skips a warm page cache; the bench compares). */
  readonly direct?: boolean;
}

export interface TransferOptions extends TransferTuning {
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((bytesDone: number) => void) | undefined;
  /** Names the file(s) in errors (the store passes `local://container/key`, never a server path). */
  readonly label?: string;
}

/** Reads `targets.length` bytes of an open file from `offset` into the targets, in order. */
export type FileReader = (
  fd: number,
  offset: number,
  targets: readonly Uint8Array[],
  options?: TransferOptions,
) => Promise<void>;

export interface RangeCopyOptions extends TransferOptions {
  /** Tests: skip the reflink / copy_file_range steps to reach the pread + pwrite path. */
  readonly reflink?: boolean;
  readonly copyFileRange?: boolean;
}

export interface RangeCopyResult {
  readonly bytes: number;
  /** How the bytes were copied: shared blocks, kernel-side copy, or through this process's memory. */
  readonly method: 'reflink' | 'copy_file_range' | 'pread/pwrite';
  /** Why the earlier methods were passed over (absent when the first one that applied worked). */
  readonly reason?: string;
}

/** Copies `length` bytes between two open files; rejects with the errno name in `code`. */
export type RangeCopier = (
  srcFd: number,
  srcOffset: number,
  dstFd: number,
  dstOffset: number,
  length: number,
  options?: RangeCopyOptions,
) => Promise<RangeCopyResult>;

/** Runs `fn` with a cancel flag that the signal sets; the native side checks it between chunks. */
async function withCancelFlag<T>(
  signal: AbortSignal | undefined,
  fn: (cancel: Int32Array) => Promise<T>,
): Promise<T> {
  const cancel = new Int32Array(1);
  const onAbort = () => {
    cancel[0] = 1;
  };
  signal?.throwIfAborted();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn(cancel);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function nativeOptions(options: TransferOptions, cancel: Int32Array) {
  return {
    cancel,
    ...(options.label !== undefined ? { label: options.label } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.chunkBytes !== undefined ? { chunkBytes: options.chunkBytes } : {}),
    ...(options.hugePages !== undefined ? { hugePages: options.hugePages } : {}),
    ...(options.direct !== undefined ? { direct: options.direct } : {}),
  };
}

/** The addon's threaded reader; undefined where the addon is not built. */
export function nativeFileReader(tuning: TransferTuning = {}): FileReader | undefined {
  const addon = optionalAddon();
  if (!addon) return undefined;
  return (fd, offset, targets, options = {}) =>
    withCancelFlag(options.signal, async (cancel) => {
      const progress = options.onProgress;
      await addon.readFileRange(
        fd,
        offset,
        targets,
        nativeOptions({ ...tuning, ...options }, cancel),
        progress ? (done: number) => progress(done) : undefined,
      );
    });
}

/** The addon's threaded range copy; undefined where the addon is not built. */
export function nativeRangeCopier(defaults: RangeCopyOptions = {}): RangeCopier | undefined {
  const addon = optionalAddon();
  if (!addon) return undefined;
  return (srcFd, srcOffset, dstFd, dstOffset, length, options = {}) => {
    const all = { ...defaults, ...options };
    return withCancelFlag(all.signal, (cancel) =>
      addon.copyFileRange(
        srcFd,
        srcOffset,
        dstFd,
        dstOffset,
        length,
        {
          ...nativeOptions(all, cancel),
          ...(all.reflink !== undefined ? { reflink: all.reflink } : {}),
          ...(all.copyFileRange !== undefined ? { copyFileRange: all.copyFileRange } : {}),
        },
        all.onProgress ? (done: number) => all.onProgress!(done) : undefined,
      ),
    );
  };
}

/** Bytes gathered into one writev call (and at most IOV_MAX pieces): large writes, bounded memory held. */
const GATHER_BYTES = 64 * 2 ** 20;
const GATHER_PIECES = 1024;
/** Bytes one writev call may carry: a stream can hand over pieces of 2 GiB and more (see flush). */
export const MAX_CALL_BYTES = 2 ** 30;

/**
 * Writes pieces at consecutive positions of a file in large writev calls. The pieces are held (not copied) until
 * written, so a producer must not reuse a piece's memory after handing it over (streams never do).
 */
export class GatheredWriter {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly handle: FileHandle,
    /** Where the next piece goes. */
    public position: number,
  ) {}

  /** Takes a piece; writes the gathered pieces once they are large. */
  async add(piece: Uint8Array): Promise<void> {
    if (piece.byteLength === 0) return;
    this.pending.push(piece);
    this.pendingBytes += piece.byteLength;
    if (this.pendingBytes >= GATHER_BYTES || this.pending.length >= GATHER_PIECES) await this.flush();
  }

  /** Writes what is gathered, in calls of at most MAX_CALL_BYTES. */
  async flush(): Promise<void> {
    let pieces = this.pending;
    let left = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    while (left > 0) {
      const call = firstBytes(pieces, MAX_CALL_BYTES);
      const asked = Math.min(left, MAX_CALL_BYTES);
      const { bytesWritten } = await this.handle.writev(call, this.position);
      // Node reports a write of 2 GiB or more as a negative count (int32), and a negative position means "at the
      // file's current offset": trusting it once writes on until the disk is full.
      if (!(bytesWritten > 0 && bytesWritten <= asked)) {
        throw new Error(`writev wrote ${bytesWritten} of ${asked} bytes at ${this.position}`);
      }
      this.position += bytesWritten;
      left -= bytesWritten;
      if (left > 0) pieces = dropBytes(pieces, bytesWritten); // the rest (or a short write's rest) again
    }
  }
}

/** At most `bytes` bytes from the front of the pieces (a large piece is cut, not copied). */
function firstBytes(pieces: Uint8Array[], bytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const piece of pieces) {
    if (bytes <= 0) break;
    out.push(piece.byteLength <= bytes ? piece : piece.subarray(0, bytes));
    bytes -= piece.byteLength;
  }
  return out;
}

/** The pieces after their first `bytes` bytes. */
function dropBytes(pieces: Uint8Array[], bytes: number): Uint8Array[] {
  let i = 0;
  while (bytes >= pieces[i]!.byteLength) bytes -= pieces[i++]!.byteLength;
  return [pieces[i]!.subarray(bytes), ...pieces.slice(i + 1)];
}
