// The local-directory store: container = sub-folder of the root, key = relative path inside it. Same interface
// and error codes as S3; writes go to a temporary file renamed into place, so a failed write leaves nothing.
// Symbolic links are followed only while they stay inside the object's container, and only regular files are
// objects (a FIFO or device is refused, never opened for blocking). Error messages name container and key,
// never server paths.
import { constants as fsConstants } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, realpath, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StorageError, checkExpectedSize, describeLocation } from './errors.js';
import type { StorageErrorCode } from './errors.js';
import { PartSink, allocateBlob, planLayout } from './host-blob.js';
import type { BlobLayout } from './host-blob.js';
import type { StorageSettings } from './settings.js';
import { composeIntoFile, fileVersion } from './local-compose.js';
import {
  type FileReader,
  GatheredWriter,
  type RangeCopier,
  nativeFileReader,
  nativeRangeCopier,
} from './local-io.js';
import { composeNow, composedWrite } from './composed-write.js';
import type {
  ComposeResult,
  ComposedObject,
  ComposedPlan,
  ComposedWrite,
  HostBlob,
  ObjectInfo,
  ObjectLocation,
  ObjectStore,
  ReadOptions,
  WriteOptions,
} from './types.js';

/** Bytes per read() call: small enough that cancellation is prompt, large enough to stream at disk speed. */
const READ_BYTES = 8 * 2 ** 20;
/** Reads in flight per untransformed read without the addon (Node's thread pool has 4 threads by default). */
const READS_IN_FLIGHT = 4;
/** Bytes per staging buffer of a transformed read with the addon: one is read while the other is converted. */
export const STAGING_BYTES = 64 * 2 ** 20;
/** A temporary file untouched this long belongs to a writer that died (a live write touches it constantly). */
export const STALE_TEMP_MS = 10 * 60_000;
// Never blocks on a FIFO (its open would wait for a writer forever); never follows a last-component link.
const OPEN_READ = fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOFOLLOW;

interface Resolved {
  readonly containerDir: string;
  readonly file: string;
}

/**
 * Temporary files are `.knn-tmp-<16 hex of the object's name>-<8 random hex>` in the object's folder: short, so
 * any valid name (255 bytes) can be written, and tied to the object, so the next write of it removes what a
 * killed writer left. (Earlier versions used `<name>.tmp-<12 hex>`; the start-up sweep removes those too.)
 */
const TEMP_PREFIX = '.knn-tmp-';
const TEMP_NAME = /^\.knn-tmp-[0-9a-f]{16}-[0-9a-f]{8}$|\.tmp-[0-9a-f]{12}$/;

function tempPrefixFor(name: string): string {
  return `${TEMP_PREFIX}${createHash('sha256').update(name).digest('hex').slice(0, 16)}-`;
}

/** Whether a file name is one of this store's temporary files. */
export function isTempFileName(name: string): boolean {
  return TEMP_NAME.test(name);
}

export class LocalObjectStore implements ObjectStore {
  readonly kind = 'local';
  readonly root: string;

  constructor(
    private readonly settings: StorageSettings,
    /** Kernel-side range copy (the addon's threads, local-io.ts); undefined: copies are written from memory. */
    private readonly copier: RangeCopier | undefined = nativeRangeCopier(),
    /** Threaded reads (the addon, local-io.ts); null: Node's fs reads (as where the addon is not built). */
    reader?: FileReader | null,
  ) {
    this.root = path.resolve(settings.localRoot);
    this.reader =
      reader === undefined ? nativeFileReader({ hugePages: settings.localHugePages }) : (reader ?? undefined);
  }

  private readonly reader: FileReader | undefined;

  /** Whether ranges can be copied kernel-side (the addon is built). */
  get copierAvailable(): boolean {
    return this.copier !== undefined;
  }

  address(location: ObjectLocation): string {
    return describeLocation('local', location);
  }

  async head(location: ObjectLocation, signal?: AbortSignal): Promise<ObjectInfo> {
    signal?.throwIfAborted();
    const where = this.resolve(location);
    try {
      const info = await stat(await this.realFile(location, where), { bigint: true });
      if (!info.isFile()) throw this.notRegular(location, info);
      return { size: Number(info.size), version: fileVersion(info) };
    } catch (err) {
      throw await this.explain(err, 'checking', location, where);
    }
  }

  async read(location: ObjectLocation, options: ReadOptions = {}): Promise<HostBlob> {
    const { signal } = options;
    const where = this.resolve(location);
    const address = this.address(location);
    let handle: FileHandle | undefined;
    try {
      signal?.throwIfAborted();
      handle = await open(await this.realFile(location, where), OPEN_READ);
      const info = await handle.stat({ bigint: true });
      if (!info.isFile()) throw this.notRegular(location, info);
      const size = Number(info.size);
      checkExpectedSize(address, location, size, options);
      const layout = planLayout(
        size,
        {
          alignBytes: options.alignBytes,
          transform: options.transform,
          maxChunkBytes: this.settings.maxChunkBytes,
        },
        { location, address },
      );
      const blob = allocateBlob(layout);
      if (this.reader) await readNative(this.reader, handle, layout, blob, { ...options, label: address });
      else await readInto(handle, layout, blob, options);
      return { ...blob, version: fileVersion(info) };
    } catch (err) {
      throw await this.explain(err, 'reading', location, where, signal);
    } finally {
      await handle?.close();
    }
  }

  async write(
    location: ObjectLocation,
    body: Readable,
    options: WriteOptions = {},
  ): Promise<{ bytes: number }> {
    const { signal } = options;
    const onAbort = () =>
      body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('cancelled'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.writeVia(location, options, async (handle) => {
        // Gathered into large writes: a stream's pieces are often small (an index's header fields).
        const writer = new GatheredWriter(handle, 0);
        let bytes = 0;
        for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
          signal?.throwIfAborted();
          const piece = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          await writer.add(piece);
          bytes += piece.length;
          options.onProgress?.(bytes);
        }
        await writer.flush();
        return { bytes };
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!body.readableEnded) body.destroy();
    }
  }

  /** The index with its vectors copied kernel-side from the `.knnvec` (copy_file_range), see local-compose.ts. */
  writeComposed(
    location: ObjectLocation,
    object: ComposedObject,
    options: WriteOptions = {},
  ): Promise<ComposeResult> {
    return composeNow((plan) => this.startComposed(location, plan, options), object);
  }

  /**
   * The middle starts now, into the temporary file at its final offset (the vectors copied kernel-side, or bytes
   * of ours written); finish() writes the rest.
   */
  startComposed(location: ObjectLocation, plan: ComposedPlan, options: WriteOptions = {}): ComposedWrite {
    return composedWrite(options, async (ends, runOptions, copied) => {
      const { copy } = plan;
      if ('sent' in copy) {
        return this.writeVia(location, runOptions, (handle) =>
          composeIntoFile(handle, { sent: copy }, plan, ends, runOptions, copied),
        );
      }
      const from = this.resolve(copy.source);
      const explain = (err: unknown) => this.explain(err, 'copying from', copy.source, from);
      // The source as read: links resolved inside its container, a regular file (as read() insists).
      const file = await this.realFile(copy.source, from).catch(async (err: unknown) => {
        throw await explain(err);
      });
      const source = { range: copy, file, copier: this.copier, explain, label: this.address(copy.source) };
      return this.writeVia(location, runOptions, (handle) =>
        composeIntoFile(handle, { source }, plan, ends, runOptions, copied),
      );
    });
  }

  /** Runs `fill` on a fresh temporary file renamed into place when it succeeds; on failure nothing is left. */
  private async writeVia<T>(
    location: ObjectLocation,
    options: WriteOptions,
    fill: (handle: FileHandle) => Promise<T>,
  ): Promise<T> {
    const { signal } = options;
    const where = this.resolve(location);
    const name = path.basename(where.file);
    let temp: string | undefined;
    let handle: FileHandle | undefined;
    try {
      signal?.throwIfAborted();
      const folder = await this.realFolder(location, where);
      const target = path.join(folder, name);
      await removeTemps(folder, (f) => f.startsWith(tempPrefixFor(name)));
      temp = path.join(folder, tempPrefixFor(name) + randomBytes(4).toString('hex'));
      handle = await open(temp, 'wx');
      const result = await fill(handle);
      signal?.throwIfAborted();
      await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(temp, target);
      return result;
    } catch (err) {
      await handle?.close().catch(() => {});
      if (temp) await unlink(temp).catch(() => {});
      throw await this.explain(err, 'writing', location, where, signal);
    }
  }

  async close(): Promise<void> {}

  /**
   * Removes temporary files that no writer has touched for `staleMs` (left by writers that were killed), anywhere
   * under the root. Run at start-up; returns how many it removed.
   */
  async removeStaleTemps(staleMs = STALE_TEMP_MS, now = Date.now()): Promise<number> {
    let entries;
    try {
      entries = await readdir(this.root, { recursive: true, withFileTypes: true });
    } catch {
      return 0; // no root (yet): nothing to clean
    }
    let removed = 0;
    for (const e of entries) {
      if (!e.isFile() || !isTempFileName(e.name)) continue;
      const file = path.join(e.parentPath, e.name);
      const info = await stat(file).catch(() => undefined);
      if (!info || now - info.mtimeMs < staleMs) continue;
      if (
        await unlink(file).then(
          () => true,
          () => false,
        )
      )
        removed++;
    }
    return removed;
  }

  /** The object's file with links resolved; refused (InvalidLocation) if that leaves the container. */
  private async realFile(location: ObjectLocation, where: Resolved): Promise<string> {
    const container = await this.realContainer(location, where);
    const file = await realpath(where.file);
    if (!isInside(container, file)) throw this.outside(location);
    return file;
  }

  /**
   * The object's folder with links resolved, created if missing; refused (InvalidLocation) if it leaves the
   * container (checked on the part that exists before anything is created, and again after).
   */
  private async realFolder(location: ObjectLocation, where: Resolved): Promise<string> {
    const container = await this.realContainer(location, where);
    const folder = path.dirname(where.file);
    let existing = folder;
    for (;;) {
      const real = await realpath(existing).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (real !== undefined) {
        if (!isInside(container, real)) throw this.outside(location);
        break;
      }
      existing = path.dirname(existing);
    }
    await mkdir(folder, { recursive: true });
    const real = await realpath(folder);
    if (!isInside(container, real)) throw this.outside(location);
    return real;
  }

  /** The container folder with links resolved; it must be inside the root (ENOENT when it does not exist). */
  private async realContainer(location: ObjectLocation, where: Resolved): Promise<string> {
    const [root, container] = await Promise.all([realpath(this.root), realpath(where.containerDir)]);
    if (!isInside(root, container) || root === container) throw this.outside(location);
    return container;
  }

  private outside(location: ObjectLocation): StorageError {
    return new StorageError(
      'InvalidLocation',
      `${this.address(location)} is not a valid location: a symbolic link on its path leads out of its container`,
      { location },
    );
  }

  /** A folder is no object (NoSuchKey, as on S3); a FIFO, socket or device is refused, never read. */
  private notRegular(location: ObjectLocation, info: { isDirectory(): boolean; isFIFO(): boolean }): Error {
    if (info.isDirectory()) return Object.assign(new Error('a folder'), { code: 'EISDIR' });
    const kind = info.isFIFO() ? 'a FIFO' : 'a socket or device';
    return new StorageError(
      'InvalidLocation',
      `${this.address(location)} is not a regular file (it is ${kind}); objects must be regular files`,
      { location },
    );
  }

  /** Checks the location and maps it under the root; a key may never leave its container. */
  private resolve(location: ObjectLocation): Resolved {
    const { container, key } = location;
    const bad = (why: string) =>
      new StorageError('InvalidLocation', `${this.address(location)} is not a valid location: ${why}`, {
        location,
      });
    if (!isPlainSegment(container)) throw bad('the container must be one folder name');
    if (key.length === 0 || key.includes('\0')) throw bad('the key must be a non-empty path');
    if (key.startsWith('/') || path.isAbsolute(key)) throw bad('the key must be relative');
    if (!key.split('/').every(isPlainSegment))
      throw bad("the key may not contain '.', '..' or empty segments");
    const containerDir = path.join(this.root, container);
    const file = path.join(containerDir, key);
    const relative = path.relative(containerDir, file);
    if (relative.startsWith('..') || path.isAbsolute(relative)) throw bad('the key leaves its container');
    return { containerDir, file };
  }

  /** Turns a file-system error into the StorageError S3 would give for the same situation. */
  private async explain(
    err: unknown,
    action: string,
    location: ObjectLocation,
    where: Resolved,
    signal?: AbortSignal,
  ): Promise<StorageError> {
    if (err instanceof StorageError) return err;
    const address = this.address(location);
    const options = { location, cause: err };
    if (signal?.aborted) return new StorageError('Aborted', `${action} ${address} was cancelled`, options);
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const fail = (kind: StorageErrorCode, why: string) =>
      new StorageError(kind, `${action} ${address} failed: ${why}`, options);
    switch (code) {
      case 'ENOENT':
      case 'ENOTDIR':
      case 'EISDIR':
        if (!(await isFolder(where.containerDir))) {
          return fail(
            'NoSuchBucket',
            `container '${location.container}' does not exist in the local store (NoSuchBucket)`,
          );
        }
        return fail('NoSuchKey', `no such object (NoSuchKey)`);
      case 'EACCES':
      case 'EPERM':
        return fail('AccessDenied', `permission denied (${code})`);
      case 'ESHRANK': // shorter than its size said: it shrank while being read
        return fail('Corrupt', systemErrorText(err as NodeJS.ErrnoException));
      default:
        return fail('Failed', systemErrorText(err as NodeJS.ErrnoException));
    }
  }
}

/**
 * A file-system error in words without the server path it names: `EROFS: read-only file system, open '/x'`
 * becomes `read-only file system (EROFS)`.
 */
function systemErrorText(err: NodeJS.ErrnoException): string {
  const code = err.code ?? err.name;
  const text = (err.message ?? String(err))
    .replace(new RegExp(`^${code}: `), '')
    .replace(/, \w+ '[^']*'( -> '[^']*')?$/, '');
  return `${text} (${code})`;
}

function isInside(parent: string, child: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** Removes the temporary files in `folder` whose names `match` (what killed writers of an object left). */
async function removeTemps(folder: string, match: (name: string) => boolean): Promise<void> {
  const names = await readdir(folder).catch(() => [] as string[]);
  await Promise.all(names.filter(match).map((n) => unlink(path.join(folder, n)).catch(() => undefined)));
}

function isPlainSegment(segment: string): boolean {
  return segment.length > 0 && segment !== '.' && segment !== '..' && !/[/\\\0]/.test(segment);
}

async function isFolder(dir: string): Promise<boolean> {
  return stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/**
 * Reads the file into the blob with the addon's threads: straight into the chunks, or, when transformed, into two
 * staging buffers in turn (the next one is read while this one is converted on the JS thread).
 */
async function readNative(
  reader: FileReader,
  handle: FileHandle,
  layout: BlobLayout,
  blob: HostBlob,
  options: ReadOptions & { label: string },
): Promise<void> {
  const { signal, onProgress, label } = options;
  const total = layout.inputBytes;
  if (!layout.transform) {
    await reader(handle.fd, 0, blob.chunks, {
      signal,
      label,
      ...(onProgress ? { onProgress: (done: number) => onProgress(done, total) } : {}),
    });
    onProgress?.(total, total);
    signal?.throwIfAborted(); // cancelled as it ended (e.g. from the last progress report): not wanted
    return;
  }
  const sink = new PartSink(layout, blob.chunks, 0, total);
  // Whole input units per staging buffer, so each one converts without a carry.
  const size = Math.max(layout.inputUnit, STAGING_BYTES - (STAGING_BYTES % layout.inputUnit));
  const staging = [0, 1].map(() => new Uint8Array(Math.min(size, Math.max(total, 1))));
  const read = (position: number, buffer: Uint8Array) =>
    reader(handle.fd, position, [buffer.subarray(0, Math.min(buffer.length, total - position))], {
      signal,
      label,
    });
  let position = 0;
  let pending = total > 0 ? read(0, staging[0]!) : undefined;
  for (let turn = 0; pending; turn ^= 1) {
    await pending;
    const bytes = Math.min(staging[turn]!.length, total - position);
    const next = position + bytes;
    // Started before this buffer is converted; awaited (settled) on the next turn even when converting fails.
    pending = next < total ? read(next, staging[turn ^ 1]!) : undefined;
    try {
      sink.write(staging[turn]!.subarray(0, bytes));
    } catch (err) {
      await pending?.catch(() => undefined);
      throw err;
    }
    position = next;
    onProgress?.(position, total);
  }
  signal?.throwIfAborted();
}

/** Reads the file into the blob: straight into the chunks, or through a staging buffer when transformed. */
async function readInto(
  handle: FileHandle,
  layout: BlobLayout,
  blob: HostBlob,
  options: ReadOptions,
): Promise<void> {
  const { signal, onProgress } = options;
  const total = layout.inputBytes;
  if (!layout.transform) {
    // Large reads, READS_IN_FLIGHT at once (the thread pool runs them in parallel: page-cache copies and NVMe
    // queues both go faster than one read at a time).
    const segments: { chunk: Uint8Array; at: number; position: number; bytes: number }[] = [];
    let position = 0;
    for (const chunk of blob.chunks) {
      for (let at = 0; at < chunk.length; at += READ_BYTES) {
        const bytes = Math.min(READ_BYTES, chunk.length - at);
        segments.push({ chunk, at, position, bytes });
        position += bytes;
      }
    }
    let next = 0;
    let done = 0;
    let stop = false;
    const reader = async () => {
      while (next < segments.length && !stop) {
        const s = segments[next++]!;
        for (let got = 0; got < s.bytes;) {
          if (stop) return;
          signal?.throwIfAborted();
          const { bytesRead } = await handle.read(s.chunk, s.at + got, s.bytes - got, s.position + got);
          if (bytesRead === 0) throw shrunk(s.position + got, total);
          got += bytesRead;
          done += bytesRead;
          onProgress?.(done, total);
        }
      }
    };
    const readers = Array.from({ length: Math.min(READS_IN_FLIGHT, segments.length) }, () =>
      reader().catch((err: unknown) => {
        stop = true;
        throw err;
      }),
    );
    // Every reader settles before we return (none writes into the blob afterwards); the first failure is thrown.
    const settled = await Promise.allSettled(readers);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return;
  }
  const sink = new PartSink(layout, blob.chunks, 0, total);
  const staging = Buffer.allocUnsafe(Math.min(READ_BYTES, Math.max(total, 1)));
  while (!sink.complete) {
    signal?.throwIfAborted();
    const position = sink.received;
    const { bytesRead } = await handle.read(staging, 0, Math.min(staging.length, total - position), position);
    if (bytesRead === 0) throw shrunk(position, total);
    sink.write(staging.subarray(0, bytesRead));
    onProgress?.(sink.received, total);
  }
}

function shrunk(position: number, total: number): Error {
  return Object.assign(new Error(`the file shrank while being read (${position} of ${total} bytes)`), {
    code: 'ESHRANK',
  });
}
