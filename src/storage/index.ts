// The storage layer's door: the pipeline builds one ObjectStore from settings and uses only the interface.
import { LocalObjectStore } from './local.js';
import { S3ObjectStore } from './s3.js';
import { resolveStorageSettings } from './settings.js';
import type { StorageSettings } from './settings.js';
import type { ObjectStore } from './types.js';

export { StorageError, isStorageError } from './errors.js';
export type { StorageErrorCode } from './errors.js';
export { STORAGE_DEFAULTS, effectiveChecksums, resolveStorageSettings } from './settings.js';
export type { ChecksumMode, S3Credentials, StorageSettings } from './settings.js';
export type * from './types.js';

/** Builds the store the settings ask for (defaults filled in, bounds checked: a RangeError names a bad one). */
export function createObjectStore(settings: Partial<StorageSettings> = {}): ObjectStore {
  const resolved = resolveStorageSettings(settings);
  return resolved.kind === 's3' ? new S3ObjectStore(resolved) : new LocalObjectStore(resolved);
}
