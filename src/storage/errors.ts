// Storage failures as one error type with a code, so callers (the job runner, tests) match on codes, not text.
import type { ObjectLocation } from './types.js';

export const STORAGE_ERROR_CODES = [
  'NoSuchBucket',
  'NoSuchKey',
  'AccessDenied',
  /** The container or key is not acceptable (e.g. a key escaping the local store's root). */
  'InvalidLocation',
  /** The object's size differs from what the caller expects, or is not a whole number of records. */
  'SizeMismatch',
  /** Bytes failed a checksum, or the server sent a different length than it announced, beyond retries. */
  'Corrupt',
  /** The object was replaced while it was being read (its ETag changed). */
  'Changed',
  'Unreachable',
  'Timeout',
  'Throttled',
  'ServerError',
  'Aborted',
  /** Anything else the server refused (the message carries its code). */
  'Failed',
] as const;
export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[number];

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  readonly location: ObjectLocation | undefined;

  constructor(
    code: StorageErrorCode,
    message: string,
    options: { location?: ObjectLocation; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.location = options.location;
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}

/** `s3://bucket/key` or `local://container/key`, the way people write object addresses. */
export function describeLocation(scheme: string, location: ObjectLocation): string {
  return `${scheme}://${location.container}/${location.key}`;
}

/** Runs the reader's size check (ReadOptions.checkSize) before any download; its error becomes SizeMismatch. */
export function checkExpectedSize(
  address: string,
  location: ObjectLocation,
  size: number,
  options: { checkSize?: (bytes: number) => void },
): void {
  try {
    options.checkSize?.(size);
  } catch (err) {
    throw new StorageError('SizeMismatch', `${address}: ${(err as Error).message}`, { location, cause: err });
  }
}
