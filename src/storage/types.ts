import type { Readable } from 'node:stream';

/** Where an object lives: a bucket (S3) or sub-folder (local store) and an exact key. */
export interface ObjectLocation {
  readonly container: string;
  readonly key: string;
}

export interface ObjectInfo {
  readonly size: number;
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
  /** Fail (before downloading) unless the object has exactly this many bytes. */
  readonly expectedBytes?: number;
  /** Where expectedBytes comes from and what to check, for the error (e.g. "doc_count x 4 bytes per doc id"). */
  readonly expectedBytesMeaning?: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

export interface WriteOptions {
  readonly signal?: AbortSignal;
  /** Reuse this object's server-side encryption (SSE-KMS key) for the new object. */
  readonly encryptLike?: ObjectInfo;
  readonly onProgress?: (bytesDone: number) => void;
}

export interface ObjectStore {
  /** 's3' or 'local', for logs and metrics. */
  readonly kind: string;
  head(location: ObjectLocation, signal?: AbortSignal): Promise<ObjectInfo>;
  read(location: ObjectLocation, options?: ReadOptions): Promise<HostBlob>;
  /** Writes the stream as the whole object; on any failure nothing is left behind (multipart aborted). */
  write(location: ObjectLocation, body: Readable, options?: WriteOptions): Promise<{ bytes: number }>;
  close(): Promise<void>;
}
