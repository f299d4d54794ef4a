// The S3 store: HeadObject for size and KMS key, parallel ranged GETs written straight into chunked memory,
// multipart upload from a stream (s3-upload.ts). Every request is retried here (the SDK's own retries are off,
// so one policy covers request and body), and every failure becomes a StorageError naming the object.
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import PQueue from 'p-queue';
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { crc32Combine, crc32FromBase64 } from './crc32.js';
import { StorageError, checkExpectedSize, describeLocation } from './errors.js';
import { PartOverrunError, PartSink, allocateBlob, planLayout, planParts } from './host-blob.js';
import { linkedAbort, withRetries } from './retry.js';
import type { RetryPolicy } from './retry.js';
import { TransferError, classifyS3Error, toStorageError } from './s3-errors.js';
import { composeInS3 } from './s3-compose.js';
import { abortUpload, uploadToS3 } from './s3-upload.js';
import { effectiveChecksums, redactUrl } from './settings.js';
import type { StorageSettings } from './settings.js';
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

/** What HEAD tells us that a read needs beyond ObjectInfo. */
interface ObjectHead extends ObjectInfo {
  /** Every ranged GET asks for this ETag, so a replaced object fails instead of mixing old and new bytes. */
  readonly etag: string | undefined;
  /** Whole-object CRC32, when the object has one and checksums are on. */
  readonly crc32: number | undefined;
}

/** What the upload needs from the store (s3-upload.ts). */
export interface S3Access {
  readonly client: S3Client;
  readonly settings: StorageSettings;
  readonly checksums: 'crc32' | 'md5';
  readonly retry: RetryPolicy;
  readonly endpointLabel: string;
  address(location: ObjectLocation): string;
  headObject(location: ObjectLocation, signal: AbortSignal): Promise<ObjectHead>;
}

export class S3ObjectStore implements ObjectStore, S3Access {
  readonly kind = 's3';
  readonly client: S3Client;
  readonly checksums: 'crc32' | 'md5';
  readonly retry: RetryPolicy;
  readonly endpointLabel: string;
  /** Aborted by close(): stops every transfer still running. */
  private readonly closing = new AbortController();
  /** Operations in progress, so close() can wait for their clean-up. */
  private readonly running = new Set<Promise<unknown>>();

  constructor(readonly settings: StorageSettings) {
    setMaxListeners(0, this.closing.signal);
    this.checksums = effectiveChecksums(settings);
    this.retry = { maxAttempts: settings.maxAttempts, baseDelayMs: settings.retryBaseDelayMs };
    this.endpointLabel = settings.endpoint ? redactUrl(settings.endpoint) : `AWS S3 (${settings.region})`;
    this.client = createS3Client(settings, this.checksums);
  }

  address(location: ObjectLocation): string {
    return describeLocation('s3', location);
  }

  async head(location: ObjectLocation, signal?: AbortSignal): Promise<ObjectInfo> {
    const { size, kmsKeyId, etag } = await this.guard('checking', location, signal, (s) =>
      this.headObject(location, s),
    );
    return { size, ...(etag !== undefined ? { version: etag } : {}), ...(kmsKeyId ? { kmsKeyId } : {}) };
  }

  async read(location: ObjectLocation, options: ReadOptions = {}): Promise<HostBlob> {
    return this.guard('reading', location, options.signal, async (signal) => {
      const head = await this.headObject(location, signal);
      checkExpectedSize(this.address(location), location, head.size, options);
      return this.download(location, head, options, signal);
    });
  }

  async write(
    location: ObjectLocation,
    body: Readable,
    options: WriteOptions = {},
  ): Promise<{ bytes: number }> {
    return this.guard('writing', location, options.signal, (signal) =>
      uploadToS3(this, location, body, { ...options, signal }),
    );
  }

  /** The index with its vectors copied server-side from the `.knnvec` (UploadPartCopy), see s3-compose.ts. */
  writeComposed(
    location: ObjectLocation,
    object: ComposedObject,
    options: WriteOptions = {},
  ): Promise<ComposeResult> {
    return composeNow((plan) => this.startComposed(location, plan, options), object);
  }

  /** Aborts a multipart upload a build worker opened and could not close (it was killed outright). */
  async abortUpload(location: ObjectLocation, uploadId: string): Promise<void> {
    const failure = await abortUpload(this, location, uploadId, undefined);
    if (failure !== undefined) throw failure as Error;
  }

  /** The multipart upload and its UploadPartCopy parts start now; finish() uploads the head and tail parts. */
  startComposed(location: ObjectLocation, plan: ComposedPlan, options: WriteOptions = {}): ComposedWrite {
    return composedWrite(options, (ends, runOptions, copied) =>
      this.guard('writing', location, runOptions.signal, (signal) =>
        composeInS3(this, location, plan, ends, { ...runOptions, signal }, copied),
      ),
    );
  }

  /** Cancels every transfer, waits for their clean-up (multipart aborts), then releases connections. */
  async close(): Promise<void> {
    this.closing.abort(new Error('the object store was closed'));
    await Promise.allSettled(this.running);
    this.client.destroy();
  }

  /** Runs `work` with a signal that also fires on close(), and turns any failure into a StorageError. */
  private async guard<T>(
    action: string,
    location: ObjectLocation,
    callerSignal: AbortSignal | undefined,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const signal = callerSignal ? AbortSignal.any([callerSignal, this.closing.signal]) : this.closing.signal;
    setMaxListeners(0, signal); // one listener per part in flight
    const running = work(signal);
    this.running.add(running);
    try {
      return await running;
    } catch (err) {
      const context = {
        action,
        location,
        address: this.address(location),
        endpoint: this.endpointLabel,
        signal,
      };
      throw toStorageError(err, context);
    } finally {
      this.running.delete(running);
    }
  }

  async headObject(location: ObjectLocation, signal: AbortSignal): Promise<ObjectHead> {
    const input = {
      Bucket: location.container,
      Key: location.key,
      ...(this.checksums === 'crc32' ? { ChecksumMode: 'ENABLED' as const } : {}),
    };
    let out: HeadObjectCommandOutput;
    try {
      out = await withRetries(
        () => this.client.send(new HeadObjectCommand(input), { abortSignal: signal }),
        this.retry,
        classifyS3Error,
        signal,
      );
    } catch (err) {
      throw await this.explainHeadFailure(location, err, signal);
    }
    return {
      size: out.ContentLength ?? 0,
      ...(out.ServerSideEncryption?.startsWith('aws:kms') && out.SSEKMSKeyId
        ? { kmsKeyId: out.SSEKMSKeyId }
        : {}),
      etag: out.ETag,
      crc32: fullObjectCrc32(out),
    };
  }

  /** HEAD answers a bare 404 for both a missing bucket and a missing key; HeadBucket tells them apart. */
  private async explainHeadFailure(
    location: ObjectLocation,
    err: unknown,
    signal: AbortSignal,
  ): Promise<unknown> {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== 404 || signal.aborted) return err;
    const bucketExists = await this.client
      .send(new HeadBucketCommand({ Bucket: location.container }), { abortSignal: signal })
      .then(
        () => true,
        (bucketErr: { $metadata?: { httpStatusCode?: number } }) =>
          bucketErr.$metadata?.httpStatusCode !== 404,
      );
    return Object.assign(new Error(bucketExists ? 'not found' : 'bucket not found'), {
      name: bucketExists ? 'NoSuchKey' : 'NoSuchBucket',
      $metadata: { httpStatusCode: 404 },
    });
  }

  private async download(
    location: ObjectLocation,
    head: ObjectHead,
    options: ReadOptions,
    signal: AbortSignal,
  ): Promise<HostBlob> {
    const address = this.address(location);
    const layout = planLayout(
      head.size,
      {
        alignBytes: options.alignBytes,
        transform: options.transform,
        maxChunkBytes: this.settings.maxChunkBytes,
      },
      { location, address },
    );
    const blob = allocateBlob(layout);
    const verifyCrc = head.crc32 !== undefined;
    const sinks = planParts(head.size, this.settings.readPartBytes, layout.inputUnit).map(
      (p) => new PartSink(layout, blob.chunks, p.start, p.end, verifyCrc),
    );
    const progress = new ProgressReporter(head.size, options.onProgress);
    await runAll(sinks, this.settings.readConcurrency, signal, (sink, partSignal) =>
      this.fetchPart(location, head, sink, partSignal, progress),
    );
    progress.finish();
    if (verifyCrc) checkCrc32(address, location, sinks, head.crc32!);
    return head.etag ? { ...blob, version: head.etag } : blob;
  }

  /** Fetches one range into its sink; a retry resumes where the failed attempt stopped. */
  private async fetchPart(
    location: ObjectLocation,
    head: ObjectHead,
    sink: PartSink,
    signal: AbortSignal,
    progress: ProgressReporter,
  ): Promise<void> {
    await withRetries(
      () => this.fetchRange(location, head, sink, signal, progress),
      this.retry,
      classifyS3Error,
      signal,
    );
  }

  /** Streams a response body into the sink; a connection lost mid-body becomes a clear, retryable error. */
  private async receive(
    body: Readable,
    sink: PartSink,
    watchdog: NodeJS.Timeout,
    progress: ProgressReporter,
    from: number,
    expected: number,
  ): Promise<void> {
    try {
      for await (const piece of body as AsyncIterable<Buffer>) {
        watchdog.refresh();
        const before = sink.resumeAt;
        sink.write(piece);
        progress.add(sink.resumeAt - before);
      }
    } catch (err) {
      const { code } = err as NodeJS.ErrnoException;
      if (code !== 'ECONNRESET' && code !== 'ERR_STREAM_PREMATURE_CLOSE' && code !== 'EPIPE') throw err;
      const got = sink.received - (from - sink.start);
      throw new TransferError(
        'Unreachable',
        `the connection broke after ${got} of ${expected} bytes of range ${from}-${sink.end - 1} (${code})`,
      );
    }
  }

  /** One GET of the rest of the sink's range. A stalled body (no byte for idleTimeoutMs) fails with Timeout. */
  private async fetchRange(
    location: ObjectLocation,
    head: ObjectHead,
    sink: PartSink,
    signal: AbortSignal,
    progress: ProgressReporter,
  ): Promise<void> {
    sink.restart();
    const from = sink.resumeAt;
    const expected = sink.end - from;
    const stalled = new AbortController();
    const attempt = AbortSignal.any([signal, stalled.signal]);
    const idleMs = this.settings.idleTimeoutMs;
    const watchdog = setTimeout(
      () => stalled.abort(new TransferError('Timeout', `no data for ${idleMs} ms`)),
      idleMs,
    );
    let body: Readable | undefined;
    const destroyBody = () => body?.destroy(attempt.reason as Error);
    attempt.addEventListener('abort', destroyBody, { once: true });
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: location.container,
          Key: location.key,
          Range: `bytes=${from}-${sink.end - 1}`,
          ...(head.etag ? { IfMatch: head.etag } : {}),
        }),
        { abortSignal: attempt },
      );
      if (!(out.Body instanceof Readable)) throw new Error('GetObject returned no body stream');
      body = out.Body;
      if (out.ContentLength !== expected) {
        throw new TransferError(
          'Corrupt',
          `asked for ${expected} bytes at ${from}, the server announced ${out.ContentLength}`,
        );
      }
      await this.receive(body, sink, watchdog, progress, from, expected);
      if (!sink.complete) {
        const got = sink.received - (from - sink.start);
        throw new TransferError(
          'Corrupt',
          `body of range ${from}-${sink.end - 1} ended after ${got} of ${expected} bytes`,
        );
      }
    } catch (err) {
      const reason: unknown = attempt.reason;
      if (attempt.aborted && reason instanceof TransferError) throw reason;
      if (err instanceof PartOverrunError) throw new TransferError('Corrupt', err.message);
      throw err;
    } finally {
      clearTimeout(watchdog);
      attempt.removeEventListener('abort', destroyBody);
      body?.destroy();
    }
  }
}

function createS3Client(settings: StorageSettings, checksums: 'crc32' | 'md5'): S3Client {
  const maxSockets = settings.readConcurrency + settings.writeConcurrency + 4;
  const flexible = checksums === 'crc32' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle ?? settings.endpoint !== undefined,
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    maxAttempts: 1, // retries happen here, per part, with resume (see withRetries)
    requestChecksumCalculation: flexible,
    responseChecksumValidation: flexible,
    requestHandler: {
      // Our own agents: the SDK otherwise opens a fresh connection for every "Expect: 100-continue" upload.
      httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets }),
      connectionTimeout: settings.connectTimeoutMs,
      socketTimeout: settings.idleTimeoutMs,
    },
  });
}

/** The object's whole-object CRC32; undefined when it has none or only a composite (per-part) one. */
function fullObjectCrc32(out: HeadObjectCommandOutput): number | undefined {
  if (!out.ChecksumCRC32 || (out.ChecksumType !== undefined && out.ChecksumType !== 'FULL_OBJECT'))
    return undefined;
  return crc32FromBase64(out.ChecksumCRC32);
}

function checkCrc32(
  address: string,
  location: ObjectLocation,
  sinks: readonly PartSink[],
  expected: number,
): void {
  let crc = 0;
  for (const sink of sinks) crc = crc32Combine(crc, sink.crc, sink.end - sink.start);
  if (crc === expected) return;
  throw new StorageError(
    'Corrupt',
    `${address}: downloaded bytes fail the object's CRC32 checksum; try again`,
    {
      location,
    },
  );
}

/**
 * Runs `work` on every item with at most `concurrency` at once (p-queue). The first failure aborts the rest (through
 * the signal given to `work`) and is thrown once all have settled, so nothing writes into memory after we return.
 */
export async function runAll<T>(
  items: readonly T[],
  concurrency: number,
  signal: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const { signal: shared, abort } = linkedAbort(signal);
  const queue = new PQueue({ concurrency });
  let failure: { error: unknown } | undefined;
  for (const item of items) {
    void queue.add(async () => {
      if (shared.aborted) return;
      try {
        await work(item, shared);
      } catch (error) {
        failure ??= { error };
        abort(error);
        queue.clear();
      }
    });
  }
  await queue.onIdle();
  signal.throwIfAborted();
  if (failure) throw failure.error;
}

/** Calls onProgress with the bytes accepted so far, at most once per MiB (and once at the end). */
class ProgressReporter {
  private done = 0;
  private reported = 0;
  constructor(
    private readonly total: number,
    private readonly onProgress: ((done: number, total: number) => void) | undefined,
  ) {}

  add(bytes: number): void {
    this.done += bytes;
    if (this.onProgress && this.done - this.reported >= 2 ** 20) this.report();
  }

  finish(): void {
    if (this.onProgress && this.reported !== this.done) this.report();
  }

  private report(): void {
    this.reported = this.done;
    this.onProgress?.(this.done, this.total);
  }
}
