// Upload of a stream as one S3 object: a single PutObject when it fits in one part, else a multipart upload with
// a bounded number of parts in flight (memory: (writeConcurrency + 1) * writePartBytes). Every part carries a
// checksum the server validates (Content-MD5, or CRC32 plus a whole-object CRC32). On any failure or
// cancellation the in-flight parts are cancelled and the multipart upload is aborted before write() returns,
// so no orphaned parts remain.
//
// Not @aws-sdk/lib-storage's Upload: it does not cancel in-flight parts, rejects on abort before it has sent
// AbortMultipartUpload (a caller can't know when cleanup is done), and cannot give each part its Content-MD5.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart } from '@aws-sdk/client-s3';
import { crc32, crc32Combine, crc32ToBase64 } from './crc32.js';
import { StorageError } from './errors.js';
import { RetriesExhausted, linkedAbort, withRetries } from './retry.js';
import { AnnotatedError, classifyS3Error } from './s3-errors.js';
import type { S3Access } from './s3.js';
import type { ObjectLocation, WriteOptions } from './types.js';

/** S3's limit on parts per upload: with writePartBytes it bounds the object size. */
const MAX_PARTS = 10_000;

/** One part's bytes and the checksum the server will check them against. */
export interface Part {
  readonly number: number;
  readonly data: Buffer;
  readonly crc32: number;
  readonly md5: string | undefined;
  /** The pooled buffer to give back once the part is uploaded. */
  readonly buffer: Buffer;
}

/** Thrown when the stream we upload fails: the caller's producer broke, not S3. */
class SourceError extends Error {
  override readonly name = 'SourceError';
}

export async function uploadToS3(
  s3: S3Access,
  location: ObjectLocation,
  body: Readable,
  options: WriteOptions & { signal: AbortSignal },
): Promise<{ bytes: number }> {
  const { signal } = options;
  // Cancelling a write ends its source too, so a producer blocked on back-pressure sees the error.
  const onAbort = () => body.destroy(abortError(signal));
  signal.addEventListener('abort', onAbort, { once: true });
  const reader = new PartReader(
    body,
    s3.settings.writePartBytes,
    s3.settings.writeConcurrency + 1,
    s3.checksums,
  );
  try {
    const first = await reader.next();
    const fitsOnePart = first ? await reader.peekEnd() : true;
    const bytes = fitsOnePart
      ? await putSingle(s3, location, first, options)
      : await putMultipart(s3, location, first!, reader, options);
    await checkWritten(s3, location, bytes, signal);
    return { bytes };
  } catch (err) {
    if (err instanceof SourceError && !signal.aborted) {
      throw new StorageError('Failed', `writing ${s3.address(location)} failed: ${err.message}`, {
        location,
        cause: err.cause,
      });
    }
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (!body.readableEnded) body.destroy();
  }
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('write cancelled');
}

function encryption(options: WriteOptions): { ServerSideEncryption?: 'aws:kms'; SSEKMSKeyId?: string } {
  const keyId = options.encryptLike?.kmsKeyId;
  return keyId ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: keyId } : {};
}

export function partChecksum(
  s3: S3Access,
  part: Part,
): { ChecksumAlgorithm: 'CRC32'; ChecksumCRC32: string } | { ContentMD5: string } {
  return s3.checksums === 'crc32'
    ? { ChecksumAlgorithm: 'CRC32', ChecksumCRC32: crc32ToBase64(part.crc32) }
    : { ContentMD5: part.md5! };
}

export function send<T>(
  s3: S3Access,
  signal: AbortSignal,
  request: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  return withRetries(() => request(signal), s3.retry, classifyS3Error, signal);
}

async function putSingle(
  s3: S3Access,
  location: ObjectLocation,
  part: Part | undefined,
  options: WriteOptions & { signal: AbortSignal },
): Promise<number> {
  const data = part?.data ?? Buffer.alloc(0);
  const checksum = part ? partChecksum(s3, part) : {};
  await send(s3, options.signal, (abortSignal) =>
    s3.client.send(
      new PutObjectCommand({
        Bucket: location.container,
        Key: location.key,
        Body: data,
        ContentLength: data.length,
        ContentType: 'application/octet-stream',
        ...checksum,
        ...encryption(options),
      }),
      { abortSignal },
    ),
  );
  options.onProgress?.(data.length);
  return data.length;
}

async function putMultipart(
  s3: S3Access,
  location: ObjectLocation,
  first: Part,
  reader: PartReader,
  options: WriteOptions & { signal: AbortSignal },
): Promise<number> {
  return inMultipartUpload(s3, location, options, (uploadId) =>
    uploadParts(s3, location, uploadId, first, reader, options),
  );
}

/**
 * Creates a multipart upload, lets `fill` upload its parts, completes it with them; on any failure (cancellation
 * included) aborts it before rejecting, so no parts remain. Resolves with the object's bytes.
 */
export async function inMultipartUpload(
  s3: S3Access,
  location: ObjectLocation,
  options: WriteOptions & { signal: AbortSignal },
  fill: (uploadId: string) => Promise<{ parts: CompletedPart[]; bytes: number; crc: number }>,
): Promise<number> {
  const { signal } = options;
  const bucketKey = { Bucket: location.container, Key: location.key };
  const flexible = s3.checksums === 'crc32';
  signal.throwIfAborted();
  // Not cut short by a cancel: a create abandoned in flight may still open an upload that we would never learn of
  // (and never abort). It is one short request; a cancel is honoured as soon as it answers.
  const createTimeout = AbortSignal.timeout(Math.max(5_000, 2 * s3.settings.idleTimeoutMs));
  const created = await send(s3, createTimeout, (abortSignal) =>
    s3.client.send(
      new CreateMultipartUploadCommand({
        ...bucketKey,
        ContentType: 'application/octet-stream',
        ...(flexible ? { ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' } : {}),
        ...encryption(options),
      }),
      { abortSignal },
    ),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  const told = (state: 'open' | 'closed') => options.onMultipart?.({ state, location, uploadId });
  told('open');
  try {
    signal.throwIfAborted();
    const { parts, bytes, crc } = await fill(uploadId);
    const complete = new CompleteMultipartUploadCommand({
      ...bucketKey,
      UploadId: uploadId,
      MultipartUpload: { Parts: parts },
      ...(flexible ? { ChecksumCRC32: crc32ToBase64(crc), ChecksumType: 'FULL_OBJECT' } : {}),
    });
    await withRetries(
      async (attempt) => {
        try {
          await s3.client.send(complete, { abortSignal: signal });
        } catch (err) {
          // A retry that finds the upload gone: the earlier attempt completed it and its answer was lost.
          // checkWritten() then confirms the object's size.
          if (attempt > 1 && (err as Error).name === 'NoSuchUpload') return;
          throw err;
        }
      },
      s3.retry,
      classifyS3Error,
      signal,
    );
    told('closed');
    return bytes;
  } catch (err) {
    const failure = await abortUpload(s3, location, uploadId, err);
    told('closed'); // aborted, or (the error says so) left to the bucket's lifecycle rule
    throw failure;
  }
}

/** Uploads parts as the reader yields them, at most writeConcurrency at once; rejects on the first failure. */
export async function uploadParts(
  s3: S3Access,
  location: ObjectLocation,
  uploadId: string,
  first: Part,
  reader: PartReader,
  options: WriteOptions & { signal: AbortSignal },
): Promise<{ parts: CompletedPart[]; bytes: number; crc: number }> {
  const { signal, abort } = linkedAbort(options.signal);
  const completed: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let bytes = 0;
  let crc = 0;
  let uploaded = 0;
  const start = (part: Part) => {
    bytes += part.data.length;
    crc = crc32Combine(crc, part.crc32, part.data.length);
    const task = uploadPart(s3, location, uploadId, part, signal)
      .then((done) => {
        completed.push(done);
        uploaded += part.data.length;
        options.onProgress?.(uploaded);
      })
      .catch((error: unknown) => {
        failure ??= { error };
        abort(error);
      })
      .finally(() => {
        reader.release(part.buffer);
        inFlight.delete(task);
      });
    inFlight.add(task);
  };
  try {
    start(first);
    for (;;) {
      // The reader hands out at most writeConcurrency + 1 buffers: this waits while that many are in use.
      const part = await raceFailure(reader.next(), signal);
      if (!part || failure) break;
      if (part.number > MAX_PARTS) {
        throw new StorageError(
          'Failed',
          `writing ${s3.address(location)}: more than ${MAX_PARTS} parts of ${s3.settings.writePartBytes} bytes; ` +
            'raise S3_PART_SIZE_MB',
          { location },
        );
      }
      start(part);
    }
  } catch (error) {
    failure ??= { error };
    abort(error);
  } finally {
    await Promise.all(inFlight);
  }
  if (failure) throw failure.error;
  completed.sort((a, b) => a.PartNumber! - b.PartNumber!);
  return { parts: completed, bytes, crc };
}

/** Resolves with `promise`, or rejects as soon as `signal` aborts (the promise is left to settle on its own). */
export function raceFailure<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export async function uploadPart(
  s3: S3Access,
  location: ObjectLocation,
  uploadId: string,
  part: Part,
  signal: AbortSignal,
): Promise<CompletedPart> {
  const out = await send(s3, signal, (abortSignal) =>
    s3.client.send(
      new UploadPartCommand({
        Bucket: location.container,
        Key: location.key,
        UploadId: uploadId,
        PartNumber: part.number,
        Body: part.data,
        ContentLength: part.data.length,
        ...partChecksum(s3, part),
      }),
      { abortSignal },
    ),
  );
  if (!out.ETag) throw new Error(`UploadPart ${part.number} returned no ETag`);
  return {
    PartNumber: part.number,
    ETag: out.ETag,
    ...(s3.checksums === 'crc32' ? { ChecksumCRC32: crc32ToBase64(part.crc32) } : {}),
  };
}

/**
 * Aborts the multipart upload, whatever made the write fail (cancellation included: it uses its own signal,
 * bounded by the retry policy and the idle timeout). Returns the error to throw: `cause`, annotated when the
 * abort failed too, since parts are then left behind.
 */
export async function abortUpload(
  s3: S3Access,
  location: ObjectLocation,
  uploadId: string,
  cause: unknown,
): Promise<unknown> {
  const timeout = AbortSignal.timeout(Math.max(5_000, 2 * s3.settings.idleTimeoutMs));
  try {
    await send(s3, timeout, (abortSignal) =>
      s3.client.send(
        new AbortMultipartUploadCommand({
          Bucket: location.container,
          Key: location.key,
          UploadId: uploadId,
        }),
        { abortSignal },
      ),
    );
    return cause;
  } catch (abortErr) {
    const why = abortErr instanceof RetriesExhausted ? abortErr.last : abortErr;
    return new AnnotatedError(
      cause,
      `and aborting multipart upload ${uploadId} failed: ${(why as Error).message}; its parts remain until ` +
        'a bucket lifecycle rule AbortIncompleteMultipartUpload removes them',
    );
  }
}

/** HEADs the new object: it must exist with exactly the bytes we sent, else it is deleted and we fail. */
export async function checkWritten(
  s3: S3Access,
  location: ObjectLocation,
  bytes: number,
  signal: AbortSignal,
): Promise<void> {
  const { size } = await s3.headObject(location, signal);
  if (size === bytes) return;
  await send(s3, signal, (abortSignal) =>
    s3.client.send(new DeleteObjectCommand({ Bucket: location.container, Key: location.key }), {
      abortSignal,
    }),
  ).catch(() => {});
  throw new StorageError('Corrupt', `wrote ${bytes} bytes to ${s3.address(location)} but it holds ${size}`, {
    location,
  });
}

/**
 * Cuts a stream into parts of exactly `partBytes` (the last may be shorter), copying each incoming piece once
 * into a pooled buffer and computing its checksums on the way.
 */
export class PartReader {
  private readonly source: AsyncIterator<Buffer>;
  private pending: Buffer | undefined;
  private ended = false;
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private waiting: ((buffer: Buffer) => void) | undefined;

  constructor(
    body: Readable,
    private readonly partBytes: number,
    private readonly maxBuffers: number,
    private readonly checksums: 'crc32' | 'md5',
    private nextNumber = 1,
  ) {
    this.source = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** The next part, or undefined at the end of the stream. */
  async next(): Promise<Part | undefined> {
    if (await this.peekEnd()) return undefined;
    const buffer = await this.takeBuffer();
    let filled = 0;
    let crc = 0;
    const md5 = this.checksums === 'md5' ? createHash('md5') : undefined;
    while (filled < this.partBytes && !(await this.peekEnd())) {
      const piece = this.pending!;
      const take = Math.min(piece.length, this.partBytes - filled);
      const slice = piece.subarray(0, take);
      buffer.set(slice, filled);
      if (this.checksums === 'crc32') crc = crc32(slice, crc);
      md5?.update(slice);
      filled += take;
      this.pending = take < piece.length ? piece.subarray(take) : undefined;
    }
    const data = buffer.subarray(0, filled);
    return { number: this.nextNumber++, data, crc32: crc, md5: md5?.digest('base64'), buffer };
  }

  /** True when the stream has no more bytes (waits for the next piece to know). */
  async peekEnd(): Promise<boolean> {
    while (!this.pending && !this.ended) {
      let result: IteratorResult<Buffer>;
      try {
        result = await this.source.next();
      } catch (err) {
        throw new SourceError(`the data to upload failed: ${(err as Error).message}`, { cause: err });
      }
      if (result.done) this.ended = true;
      else if (result.value.length > 0) this.pending = toBuffer(result.value);
    }
    return !this.pending;
  }

  release(buffer: Buffer): void {
    const waiter = this.waiting;
    if (waiter) {
      this.waiting = undefined;
      waiter(buffer);
    } else {
      this.free.push(buffer);
    }
  }

  private takeBuffer(): Promise<Buffer> {
    const buffer = this.free.pop();
    if (buffer) return Promise.resolve(buffer);
    if (this.allocated < this.maxBuffers) {
      this.allocated++;
      return Promise.resolve(Buffer.allocUnsafeSlow(this.partBytes));
    }
    return new Promise((resolve) => (this.waiting = resolve));
  }
}

function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value);
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new SourceError('the data to upload must be bytes (Buffer or Uint8Array chunks)');
}
