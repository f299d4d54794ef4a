import type { Readable } from 'node:stream';

/** Where an object lives: a bucket (S3) or sub-folder (local store) and an exact key. */
export interface ObjectLocation {
  readonly container: string;
  readonly key: string;
}

export interface ObjectInfo {
  readonly size: number;
  /** The object's version, as HostBlob.version gives it for the bytes read (S3: its ETag; local: size, times, inode). */
  readonly version?: string;
  /** SSE-KMS key of the object, reused when writing next to it. */
  readonly kmsKeyId?: string;
}

/**
 * One object's bytes in host memory, as chunks (Node 20 typed arrays stop at 4 GiB).
 * Chunks in order are the bytes in order; each chunk's length is a multiple of ReadOptions.alignBytes.
 */
export interface HostBlob {
  readonly byteLength: number;
  readonly chunks: readonly Uint8Array[];
  /** The version of the object these bytes are (S3: its ETag; local: size, times and inode), when known. */
  readonly version?: string;
}

/**
 * Applied to the bytes as they arrive, instead of a plain copy (e.g. fp32 -> fp16 for half_float):
 * every `inputUnit` bytes in become `outputUnit` bytes out.
 */
export interface PartTransform {
  readonly inputUnit: number;
  readonly outputUnit: number;
  /** input.length is a multiple of inputUnit; output.length = input.length / inputUnit * outputUnit. */
  apply(input: Uint8Array, output: Uint8Array): void;
}

export interface ReadOptions {
  /** Chunk lengths of the result are multiples of this (the in-memory record size), so no record straddles chunks. */
  readonly alignBytes?: number;
  readonly transform?: PartTransform;
  /**
   * The reader's check of the object's size, called before any byte is downloaded; what it throws fails the read
   * as SizeMismatch with its message. The rule belongs to whoever knows the format (vectors/ for .knnvec, .knndid).
   */
  readonly checkSize?: (bytes: number) => void;
  readonly signal?: AbortSignal;
  readonly onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/** A multipart upload a write opened (S3), or closed again (completed or aborted). */
export interface MultipartEvent {
  readonly state: 'open' | 'closed';
  readonly location: ObjectLocation;
  readonly uploadId: string;
}

export interface WriteOptions {
  readonly signal?: AbortSignal;
  /**
   * Told of each multipart upload the write opens and closes: whoever outlives this process (the service, for a
   * build worker killed outright) can abort one left open (ObjectStore.abortUpload).
   */
  readonly onMultipart?: (event: MultipartEvent) => void;
  /** Reuse this object's server-side encryption (SSE-KMS key) for the new object. */
  readonly encryptLike?: ObjectInfo;
  readonly onProgress?: (bytesDone: number) => void;
}

/**
 * A byte range of an object the store already holds, repeated in a new object: the store copies it on its side
 * (S3 UploadPartCopy, copy_file_range) instead of receiving the bytes again.
 */
export interface CopyRange {
  readonly source: ObjectLocation;
  /** The source's version as it was read (HostBlob.version): a source changed since then fails the write. */
  readonly sourceVersion: string;
  /** First byte of the range in the source. */
  readonly start: number;
  readonly bytes: number;
  /**
   * The same bytes in host memory, in order: sent where copying cannot apply, and used to check copies. A promise
   * when the copy starts before they have been downloaded (the job starts it with the download); it rejects if
   * the download fails, which fails the write.
   */
  readonly local: readonly Uint8Array[] | Promise<readonly Uint8Array[]>;
}

/** A new object = `before` bytes, then a range copied from another object, then `after` bytes. */
export interface ComposedObject {
  readonly before: Iterable<Uint8Array>;
  readonly beforeBytes: number;
  readonly copy: CopyRange;
  readonly after: Iterable<Uint8Array>;
  readonly afterBytes: number;
}

/**
 * Bytes of ours that no stored object holds (e.g. vectors converted to fp16), as a started composed write's
 * middle: written (sent) from memory at once, while the caller is still making the bytes around them.
 */
export interface SentRange {
  /** Why they are sent rather than copied: the write's reason (its path is 'stream'). */
  readonly sent: string;
  readonly bytes: number;
  readonly local: readonly Uint8Array[];
}

/**
 * A composed object's plan: the middle now (a range the store copies, or bytes of ours it is sent), only the
 * sizes of the bytes around it (they come later).
 */
export interface ComposedPlan {
  readonly beforeBytes: number;
  readonly copy: CopyRange | SentRange;
  readonly afterBytes: number;
}

/** The bytes around the copied range, exactly ComposedPlan.beforeBytes and afterBytes long. */
export interface ComposedEnds {
  readonly before: Iterable<Uint8Array>;
  readonly after: Iterable<Uint8Array>;
}

/**
 * A composed write under way (ObjectStore.startComposed): the store copies the range while the caller makes the
 * bytes around it (e.g. while the graph builds). Exactly one of finish() or abort() must be called.
 */
export interface ComposedWrite {
  /** Writes `before` and `after` and completes the object; rejects (leaving nothing) on any failure. */
  finish(ends: ComposedEnds): Promise<ComposeResult>;
  /** Gives the object up: resolves once everything has stopped and nothing is left behind. */
  abort(reason?: unknown): Promise<void>;
  /** Resolves when the range's copy has ended, however it ended (the outcome comes from finish()). */
  readonly copyEnded: Promise<void>;
}

export interface ComposeResult {
  /** Bytes of the new object. */
  readonly bytes: number;
  /** Bytes this process sent (or wrote); the rest was copied by the store. */
  readonly bytesSent: number;
  readonly bytesCopied: number;
  /** 'copy' when the range was copied store-side, 'stream' when its bytes were sent. */
  readonly path: 'copy' | 'stream';
  /** Why the range was sent rather than copied (path 'stream'). */
  readonly reason?: string;
}

export interface ObjectStore {
  /** 's3' or 'local', for logs and metrics. */
  readonly kind: string;
  head(location: ObjectLocation, signal?: AbortSignal): Promise<ObjectInfo>;
  read(location: ObjectLocation, options?: ReadOptions): Promise<HostBlob>;
  /** Writes the stream as the whole object; on any failure nothing is left behind (multipart aborted). */
  write(location: ObjectLocation, body: Readable, options?: WriteOptions): Promise<{ bytes: number }>;
  /**
   * Writes an object part of which repeats a range of an object in this store, copied store-side where it can
   * (else sent, saying why). Same guarantees as write(): on failure nothing is left behind.
   */
  writeComposed?(
    location: ObjectLocation,
    object: ComposedObject,
    options?: WriteOptions,
  ): Promise<ComposeResult>;
  /**
   * writeComposed() started before the bytes around the range exist: the range starts copying now, finish()
   * supplies the rest. Same guarantees: on failure or abort nothing is left behind (no object, no multipart
   * upload, no temporary file).
   */
  startComposed?(location: ObjectLocation, plan: ComposedPlan, options?: WriteOptions): ComposedWrite;
  /** Aborts a multipart upload another process opened and could not close (S3; see WriteOptions.onMultipart). */
  abortUpload?(location: ObjectLocation, uploadId: string): Promise<void>;
  close(): Promise<void>;
}
