// Every storage setting, its default and its bounds (src/config.ts maps environment variables onto these).
import os from 'node:os';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/**
 * How transfers are checked end to end:
 * - 'crc32': S3's flexible checksums: CRC32 on every uploaded part and on the whole object, and a whole-object
 *   CRC32 check on download when the object has one. Real AWS S3.
 * - 'md5': Content-MD5 on every uploaded part (validated by the server), length checks on download. For
 *   S3-compatible servers without flexible checksums (Ceph RGW 16 answers streamed checksums with 411).
 * - 'auto': 'crc32' without a custom endpoint (AWS), 'md5' with one.
 */
export type ChecksumMode = 'auto' | 'crc32' | 'md5';

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface StorageSettings {
  /** Which store `createObjectStore` builds. */
  readonly kind: 's3' | 'local';
  /** Local store: the folder whose sub-folders are the containers. */
  readonly localRoot: string;
  /** S3-compatible endpoint URL (path-style by default); unset for AWS S3. */
  readonly endpoint?: string;
  readonly region: string;
  /** Default: true when `endpoint` is set (S3-compatible servers rarely have wildcard DNS). */
  readonly forcePathStyle?: boolean;
  /** Unset: the AWS SDK's standard credential chain (environment, profile, web identity, instance role). */
  readonly credentials?: S3Credentials;
  readonly checksums: ChecksumMode;
  /** Bytes per ranged GET. */
  readonly readPartBytes: number;
  /** Parallel ranged GETs per read. They write into the result directly, so this costs no extra memory. */
  readonly readConcurrency: number;
  /** Bytes per uploaded part (S3: 5 MiB to 5 GiB; at most 10,000 parts, so this bounds the object size). */
  readonly writePartBytes: number;
  /** Parts in flight per write. Memory per write is (writeConcurrency + 1) * writePartBytes. */
  readonly writeConcurrency: number;
  /** Attempts per request (1 = no retry) on 5xx, throttling, resets, timeouts and short bodies. */
  readonly maxAttempts: number;
  /** First retry waits up to this long (full jitter, doubling per attempt, capped at 20 s; x5 when throttled). */
  readonly retryBaseDelayMs: number;
  readonly connectTimeoutMs: number;
  /** A request that receives (or sends) no byte for this long is abandoned and retried. */
  readonly idleTimeoutMs: number;
  /** Largest chunk of a HostBlob (Node 20 typed arrays stop at 4 GiB). Tests make it small. */
  readonly maxChunkBytes: number;
  /**
   * Local store reads: advise transparent huge pages on the fresh memory the file is read into. Faster where
   * free memory is plentiful; where the page cache fills memory, the kernel may compact memory on each fault.
   */
  readonly localHugePages: boolean;
}

const cpus = Math.max(1, os.availableParallelism());

export const STORAGE_DEFAULTS: StorageSettings = {
  kind: 'local',
  localRoot: './data',
  region: 'us-east-1',
  checksums: 'auto',
  readPartBytes: 16 * MiB,
  // Loopback RGW on 2 cores peaks around 16-way; real S3 wants more streams per host: 8 per core, 16..64.
  readConcurrency: Math.min(64, Math.max(16, 8 * cpus)),
  writePartBytes: 16 * MiB,
  writeConcurrency: Math.min(16, Math.max(4, 2 * cpus)),
  maxAttempts: 5,
  retryBaseDelayMs: 100,
  connectTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxChunkBytes: GiB,
  localHugePages: true,
};

/** Bounds of each numeric setting: [min, max] (src/config.ts checks its S3_* variables against these). */
export const STORAGE_BOUNDS = {
  readPartBytes: [64 * 1024, 5 * GiB],
  readConcurrency: [1, 256],
  writePartBytes: [5 * MiB, 5 * GiB],
  writeConcurrency: [1, 64],
  maxAttempts: [1, 20],
  retryBaseDelayMs: [0, 60_000],
  connectTimeoutMs: [1, 600_000],
  idleTimeoutMs: [1, 3_600_000],
  maxChunkBytes: [1, 2 ** 32 - 1],
} as const satisfies Record<string, readonly [number, number]>;

/** Fills defaults and checks bounds; throws a RangeError naming the setting. */
export function resolveStorageSettings(partial: Partial<StorageSettings> = {}): StorageSettings {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const settings: StorageSettings = { ...STORAGE_DEFAULTS, ...defined };
  for (const [name, [min, max]] of Object.entries(STORAGE_BOUNDS)) {
    const value = settings[name as keyof StorageSettings];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(
        `storage setting ${name} must be an integer in [${min}, ${max}], got ${String(value)}`,
      );
    }
  }
  if (!['s3', 'local'].includes(settings.kind)) {
    throw new RangeError(`storage setting kind must be 's3' or 'local', got '${settings.kind}'`);
  }
  if (!['auto', 'crc32', 'md5'].includes(settings.checksums)) {
    throw new RangeError(`storage setting checksums must be auto, crc32 or md5, got '${settings.checksums}'`);
  }
  if (settings.endpoint !== undefined) checkEndpoint(settings.endpoint);
  return settings;
}

function checkEndpoint(endpoint: string): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new RangeError(
      `S3 endpoint must be a URL like http://127.0.0.1:9000, got '${redactUrl(endpoint)}'`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RangeError(`S3 endpoint must use http or https, got '${redactUrl(endpoint)}'`);
  }
}

/** Host memory one write holds: S3's pooled part buffers ((writeConcurrency + 1) x writePartBytes); none locally. */
export function writeBufferBytes(settings: StorageSettings): number {
  return settings.kind === 's3' ? (settings.writeConcurrency + 1) * settings.writePartBytes : 0;
}

/** The checksum mode 'auto' stands for with these settings. */
export function effectiveChecksums(settings: StorageSettings): 'crc32' | 'md5' {
  if (settings.checksums !== 'auto') return settings.checksums;
  return settings.endpoint === undefined ? 'crc32' : 'md5';
}

/** A URL safe to print: any user:password part is dropped. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return value.replace(/\/\/[^/@]*@/, '//');
  }
}
