// The local-directory store: container = sub-folder of the root, key = relative path inside it. Same interface
// and error codes as S3; writes go to a temporary file renamed into place, so a failed write leaves nothing.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { StorageError, describeLocation } from './errors.js';
import type { StorageErrorCode } from './errors.js';
import { PartSink, allocateBlob, planLayout } from './host-blob.js';
import type { BlobLayout } from './host-blob.js';
import type { StorageSettings } from './settings.js';
import { type RangeCopier, composeIntoFile, fileVersion, nativeRangeCopier } from './local-compose.js';
import type {
  ComposeResult,
  ComposedObject,
  HostBlob,
  ObjectInfo,
  ObjectLocation,
  ObjectStore,
  ReadOptions,
  WriteOptions,
} from './types.js';

/** Bytes per read() call: small enough that cancellation is prompt, large enough to stream at disk speed. */
const READ_BYTES = 8 * 2 ** 20;
/** Reads in flight per untransformed read (Node's thread pool has 4 threads by default). */
const READS_IN_FLIGHT = 4;

interface Resolved {
  readonly containerDir: string;
  readonly file: string;
}

export class LocalObjectStore implements ObjectStore {
  readonly kind = 'local';
  readonly root: string;

  constructor(
    private readonly settings: StorageSettings,
    /** Kernel-side range copy (the addon's copy_file_range); undefined: copies are written from memory. */
    private readonly copier: RangeCopier | undefined = nativeRangeCopier(),
  ) {
    this.root = path.resolve(settings.localRoot);
  }

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
      const info = await stat(where.file);
      if (!info.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      return { size: info.size };
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
      handle = await open(where.file, 'r');
      const info = await handle.stat({ bigint: true });
      if (!info.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
      const size = Number(info.size);
      checkExpectedSize(address, location, size, options.expectedBytes);
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
      await readInto(handle, layout, blob, options);
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
        let bytes = 0;
        for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
          signal?.throwIfAborted();
          const piece = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          await handle.write(piece);
          bytes += piece.length;
          options.onProgress?.(bytes);
        }
        return { bytes };
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!body.readableEnded) body.destroy();
    }
  }

  /** The index with its vectors copied kernel-side from the `.knnvec` (copy_file_range), see local-compose.ts. */
  async writeComposed(
    location: ObjectLocation,
    object: ComposedObject,
    options: WriteOptions = {},
  ): Promise<ComposeResult> {
    const source = this.resolve(object.copy.source).file;
    return this.writeVia(location, options, (handle) =>
      composeIntoFile(handle, source, object, options, this.copier, (err) =>
        this.explain(err, 'copying from', object.copy.source, this.resolve(object.copy.source)),
      ),
    );
  }

  /** Runs `fill` on a fresh temporary file renamed into place when it succeeds; on failure nothing is left. */
  private async writeVia<T>(
    location: ObjectLocation,
    options: WriteOptions,
    fill: (handle: FileHandle) => Promise<T>,
  ): Promise<T> {
    const { signal } = options;
    const where = this.resolve(location);
    const temp = `${where.file}.tmp-${randomBytes(6).toString('hex')}`;
    let handle: FileHandle | undefined;
    try {
      signal?.throwIfAborted();
      await ensureFolder(where.containerDir, path.dirname(where.file));
      handle = await open(temp, 'wx');
      const result = await fill(handle);
      signal?.throwIfAborted();
      await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(temp, where.file);
      return result;
    } catch (err) {
      await handle?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw await this.explain(err, 'writing', location, where, signal);
    }
  }

  async close(): Promise<void> {}

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
    const message = (err as Error).message ?? String(err);
    const fail = (kind: StorageErrorCode, why: string) =>
      new StorageError(kind, `${action} ${address} failed: ${why}`, options);
    switch (code) {
      case 'ENOENT':
      case 'ENOTDIR':
      case 'EISDIR':
        if (!(await isFolder(where.containerDir))) {
          return fail('NoSuchBucket', `container folder ${where.containerDir} does not exist (NoSuchBucket)`);
        }
        return fail('NoSuchKey', `no such object (NoSuchKey): ${where.file} is not a file`);
      case 'ESHRANK':
        return fail('Corrupt', message);
      case 'EACCES':
      case 'EPERM':
        return fail('AccessDenied', `permission denied on ${where.file} (${code})`);
      default:
        return fail('Failed', `${code || (err as Error).name}: ${message}`);
    }
  }
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

/** Creates the key's sub-folders inside an existing container (a missing container is NoSuchBucket, as on S3). */
async function ensureFolder(containerDir: string, folder: string): Promise<void> {
  if (!(await isFolder(containerDir))) {
    throw Object.assign(new Error(`no folder ${containerDir}`), { code: 'ENOENT' });
  }
  await mkdir(folder, { recursive: true });
}

function checkExpectedSize(address: string, location: ObjectLocation, size: number, expected?: number): void {
  if (expected === undefined || size === expected) return;
  throw new StorageError(
    'SizeMismatch',
    `${address} has ${size} bytes but ${expected} were expected (doc_count x bytes per vector); ` +
      'check doc_count, dimension and data_type against the file',
    { location },
  );
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
