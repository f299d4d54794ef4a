// Every setting of the service: its environment variable, default and validation, in one place.
// An invalid setting stops start-up with a message naming it (ConfigError lists them all).
import os from 'node:os';

import { MAX_THREADS } from './builders/cpu.js';
import { KNN_ALGORITHMS, MAX_GRAPH_DEGREE, MAX_INTERMEDIATE_DEGREE } from './builders/gpu.js';
import { FORMAT_POLICY_NAMES, type FormatPolicyName } from './faiss-format/policy.js';
import { STORAGE_BOUNDS, type StorageSettings, resolveStorageSettings } from './storage/settings.js';

export const BUILDER_CHOICES = ['auto', 'gpu', 'cpu'] as const;
export type BuilderChoice = (typeof BUILDER_CHOICES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const OBJECT_STORES = ['s3', 'local'] as const;
export type ObjectStoreKind = (typeof OBJECT_STORES)[number];
export const CHECKSUM_MODES = ['auto', 'crc32', 'md5'] as const;
export const QUEUE_BACKENDS = ['memory', 'redis'] as const;
export type QueueBackendKind = (typeof QUEUE_BACKENDS)[number];

/** Where jobs are queued and their state kept (README.md, "Scale-out: many replicas"). */
export interface QueueSettings {
  /** memory: this process alone (p-queue + lru-cache); redis: shared by every replica through BullMQ. */
  backend: QueueBackendKind;
  /** redis://[user:password@]host:port[/db] (rediss:// for TLS); null with the memory backend. Never logged. */
  redisUrl: string | null;
  /** Prefix of every Redis key, so deployments can share one Redis. */
  redisPrefix: string;
  /** This replica's name in /_jobs and the logs (default: host name and process id). */
  replicaName: string;
  /** A replica that has not renewed a job's lock for this long is lost; its job is retried or failed. */
  replicaLostSeconds: number;
  /** How often a lost replica's job is retried on another replica before it ends FAILED. */
  replicaLostRetries: number;
}

export interface Settings {
  host: string;
  port: number;
  logLevel: LogLevel;
  /** Jobs running at once (downloading, building or uploading). */
  maxWorkers: number;
  /** The build worker processes (README.md, "Build workers"). */
  workers: {
    /** Keep MAX_WORKERS long-lived workers (GPU warmed once per worker); false: a fresh process per job. */
    warm: boolean;
    /** A warm worker is replaced after this many jobs. */
    maxJobs: number;
    /** A warm worker whose resident memory after a job (after a GC) is above this is replaced, in bytes. */
    maxIdleRssBytes: number;
  };
  requestStoreMaxSize: number;
  /** Seconds a finished job stays answerable, counted from when it finished. */
  requestStoreTtlSeconds: number;
  /** Device memory one GPU build may use, in bytes. */
  gpuMemoryLimitBytes: number;
  /** Host memory all running jobs together may use, in bytes. */
  cpuMemoryLimitBytes: number;
  /** Basic auth; both set or neither. */
  auth: { username: string; password: string } | null;
  shutdownGraceSeconds: number;
  /** A job that waited longer than this in the queue fails instead of building for a client that gave up (0: no limit). */
  maxQueueWaitSeconds: number;
  /**
   * After the drain, _status keeps answering this long after the last job finished (or until each such job has
   * been polled once), so k-NN's next poll (every 5 s +-20%) sees COMPLETED instead of a refused connection.
   */
  shutdownStatusLingerSeconds: number;
  bodyLimitBytes: number;
  builder: BuilderChoice;
  /** CPU builder threads (0 = all cores). */
  buildThreads: number;
  objectStore: ObjectStoreKind;
  /** Why objectStore has its value (logged at start). */
  objectStoreReason: string;
  s3: {
    endpoint: string | null;
    region: string;
  };
  localStoreRoot: string;
  /** Everything the object store needs (defaults filled, bounds checked); credentials come from the AWS chain. */
  storage: StorageSettings;
  /** Which Faiss layouts the service writes (src/faiss-format/README.md). */
  indexFormatPolicy: FormatPolicyName;
  /** Write each index file here first and upload it from disk (default: streamed straight into the upload). */
  spoolDir: string | null;
  /** Copy the index's stored vectors store-side from the `.knnvec` (S3 UploadPartCopy, copy_file_range). */
  copyStoredVectors: boolean;
  queue: QueueSettings;
  gpu: {
    knnAlgorithm: (typeof KNN_ALGORITHMS)[number];
    /** 0 = the GPU builder's default. */
    graphDegree: number;
    intermediateDegree: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid settings:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const GIB = 2 ** 30;
type Env = Readonly<Record<string, string | undefined>>;

/** Reads settings from an environment (process.env by default); throws ConfigError naming each bad one. */
export function loadSettings(env: Env = process.env): Settings {
  const problems: string[] = [];
  const r = new Reader(env, problems);

  const username = r.string('BASIC_AUTH_USERNAME', '');
  const password = r.string('BASIC_AUTH_PASSWORD', '');
  if ((username === '') !== (password === '')) {
    problems.push('BASIC_AUTH_USERNAME and BASIC_AUTH_PASSWORD must be set together (or neither)');
  }
  if (username.includes(':')) problems.push('BASIC_AUTH_USERNAME must not contain ":"');
  const store = chooseObjectStore(env, r);
  const localStoreRoot = r.string('LOCAL_STORE_ROOT', 'data');
  const { endpoint, region, storage } = storageFromEnv(r, problems, store.kind, localStoreRoot);

  const settings: Settings = {
    host: r.string('HOST', '0.0.0.0'),
    port: r.integer('PORT', 1025, 0, 65535),
    logLevel: r.oneOf('LOG_LEVEL', 'info', LOG_LEVELS, (v) => v.toLowerCase()),
    maxWorkers: r.integer('MAX_WORKERS', 2, 1, 256),
    workers: {
      warm: r.oneOf('WARM_WORKERS', 'true', ['true', 'false'] as const, (v) => v.toLowerCase()) === 'true',
      maxJobs: r.integer('WORKER_MAX_JOBS', 100, 1, 1_000_000),
      // Above a warm GPU worker's baseline (Node, CUDA context, cuBLAS, 128 MiB pinned staging: well under 1 GiB),
      // far below what a build holds; memory the admission budget (CPU_MEMORY_LIMIT) does not count.
      maxIdleRssBytes: Math.floor(r.number('WORKER_MAX_IDLE_RSS', 2, 0.125, 1e6) * GIB),
    },
    requestStoreMaxSize: r.integer('REQUEST_STORE_MAX_SIZE', 10_000, 1, 10_000_000),
    requestStoreTtlSeconds: r.integer('REQUEST_STORE_TTL_SECONDS', 1800, 1, 30 * 24 * 3600),
    gpuMemoryLimitBytes: Math.floor(r.number('GPU_MEMORY_LIMIT', 24, 0.001, 1e6) * GIB),
    cpuMemoryLimitBytes: Math.floor(r.number('CPU_MEMORY_LIMIT', 32, 0.001, 1e6) * GIB),
    auth: username && password ? { username, password } : null,
    shutdownGraceSeconds: r.integer('SHUTDOWN_GRACE_SECONDS', 300, 0, 24 * 3600),
    // k-NN stops polling after knn.remote_index_build.client.timeout (60 minutes by default) and never says so.
    maxQueueWaitSeconds: r.integer('MAX_QUEUE_WAIT_SECONDS', 3000, 0, 7 * 24 * 3600),
    shutdownStatusLingerSeconds: r.integer('SHUTDOWN_STATUS_LINGER_SECONDS', 15, 0, 3600),
    bodyLimitBytes: r.integer('BODY_LIMIT_BYTES', 64 * 1024, 1024, 16 * 2 ** 20),
    builder: r.oneOf('BUILDER', 'auto', BUILDER_CHOICES, (v) => v.toLowerCase()),
    buildThreads: r.integer('BUILD_THREADS', 0, 0, MAX_THREADS),
    objectStore: store.kind,
    objectStoreReason: store.reason,
    s3: { endpoint, region },
    localStoreRoot,
    storage,
    indexFormatPolicy: r.oneOf('INDEX_FORMAT_POLICY', 'compatible', FORMAT_POLICY_NAMES, (v) =>
      v.toLowerCase(),
    ),
    spoolDir: r.string('INDEX_SPOOL_DIR', '') || null,
    copyStoredVectors:
      r.oneOf('COPY_STORED_VECTORS', 'true', ['true', 'false'] as const, (v) => v.toLowerCase()) === 'true',
    queue: queueSettings(r, problems),
    gpu: {
      knnAlgorithm: r.oneOf('GPU_KNN_ALGORITHM', 'auto', KNN_ALGORITHMS, (v) => v.toLowerCase()),
      // The builder's own limits (builders/gpu.ts), so a value it would refuse stops start-up instead of every job.
      graphDegree: r.integer('GPU_GRAPH_DEGREE', 0, 0, MAX_GRAPH_DEGREE),
      intermediateDegree: r.integer('GPU_INTERMEDIATE_DEGREE', 0, 0, MAX_INTERMEDIATE_DEGREE),
    },
  };
  const { graphDegree, intermediateDegree } = settings.gpu;
  if (graphDegree > 0 && intermediateDegree > 0 && intermediateDegree < graphDegree) {
    problems.push(
      `GPU_INTERMEDIATE_DEGREE (${intermediateDegree}) must be at least GPU_GRAPH_DEGREE (${graphDegree})`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return settings;
}

function queueSettings(r: Reader, problems: string[]): QueueSettings {
  const backend = r.oneOf('QUEUE_BACKEND', 'memory', QUEUE_BACKENDS, (v) => v.toLowerCase());
  const url = r.string('REDIS_URL', '') || null;
  if (backend === 'redis' && !url)
    problems.push('QUEUE_BACKEND=redis needs REDIS_URL (e.g. redis://redis:6379)');
  if (url && !/^rediss?:\/\/[^\s]+$/.test(url)) {
    problems.push('REDIS_URL must be a redis:// or rediss:// URL'); // the value may hold a password: not echoed
  }
  const prefix = r.string('REDIS_PREFIX', 'knn-builder');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(prefix)) {
    problems.push(`REDIS_PREFIX must be 1-64 letters, digits, '_', '.' or '-', got "${prefix}"`);
  }
  return {
    backend,
    redisUrl: backend === 'redis' ? url : null,
    redisPrefix: prefix,
    replicaName: r.string('REPLICA_NAME', `${os.hostname()}-${process.pid}`),
    replicaLostSeconds: r.integer('REPLICA_LOST_SECONDS', 30, 1, 3600),
    replicaLostRetries: r.integer('REPLICA_LOST_RETRIES', 1, 0, 100),
  };
}

/**
 * The object store's settings alone (the CLI's: it has no other service setting), from the same variables and
 * with the same checks as the service's; throws ConfigError listing every problem.
 */
export function loadStorageSettings(
  kind: ObjectStoreKind,
  localRoot: string,
  env: Env = process.env,
): StorageSettings {
  const problems: string[] = [];
  const { storage } = storageFromEnv(new Reader(env, problems), problems, kind, localRoot);
  if (problems.length > 0) throw new ConfigError(problems);
  return storage;
}

function storageFromEnv(r: Reader, problems: string[], kind: ObjectStoreKind, localRoot: string) {
  let endpoint = r.string('S3_ENDPOINT_URL', '') || null;
  if (endpoint && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
    problems.push(`S3_ENDPOINT_URL must be an http(s) URL, got "${endpoint}"`);
    endpoint = null;
  }
  const region = r.string('AWS_DEFAULT_REGION', '') || r.string('AWS_REGION', '') || 'us-east-1';
  const storage = storageSettings(r, problems, {
    kind,
    localRoot,
    region,
    ...(endpoint ? { endpoint } : {}),
  });
  return { endpoint, region, storage };
}

/** The object store's settings from S3_* variables (names in src/storage/README.md), checked by the store. */
function storageSettings(r: Reader, problems: string[], base: Partial<StorageSettings>): StorageSettings {
  const MIB = 2 ** 20;
  // One size for both parts, so its bounds are theirs in MiB (an upload part is raised to S3's 5 MiB minimum).
  const partMb = r.integer(
    'S3_PART_SIZE_MB',
    0,
    Math.ceil(STORAGE_BOUNDS.readPartBytes[0] / MIB),
    Math.floor(Math.min(STORAGE_BOUNDS.readPartBytes[1], STORAGE_BOUNDS.writePartBytes[1]) / MIB),
  );
  const pathStyle = r.string('S3_FORCE_PATH_STYLE', '');
  if (pathStyle && !['true', 'false'].includes(pathStyle)) {
    problems.push(`S3_FORCE_PATH_STYLE must be true or false, got "${pathStyle}"`);
  }
  // Bounds are the store's own (STORAGE_BOUNDS), so a bad value is reported here, naming the variable.
  const bounded = (name: string, field: keyof typeof STORAGE_BOUNDS) => {
    const [min, max] = STORAGE_BOUNDS[field];
    const value = r.has(name) ? r.integer(name, NaN, min, max) : NaN;
    return Number.isNaN(value) ? undefined : value; // unset or reported: the store's default
  };
  const partial: Partial<StorageSettings> = {
    ...base,
    ...(pathStyle === 'true' || pathStyle === 'false' ? { forcePathStyle: pathStyle === 'true' } : {}),
    checksums: r.oneOf('S3_CHECKSUMS', 'auto', CHECKSUM_MODES, (v) => v.toLowerCase()),
    ...(partMb > 0 ? { readPartBytes: partMb * MIB, writePartBytes: Math.max(5, partMb) * MIB } : {}),
    readConcurrency: bounded('S3_CONCURRENCY', 'readConcurrency'),
    writeConcurrency: bounded('S3_UPLOAD_CONCURRENCY', 'writeConcurrency'),
    maxAttempts: bounded('S3_MAX_ATTEMPTS', 'maxAttempts'),
    retryBaseDelayMs: bounded('S3_RETRY_BASE_DELAY_MS', 'retryBaseDelayMs'),
    connectTimeoutMs: bounded('S3_CONNECT_TIMEOUT_MS', 'connectTimeoutMs'),
    idleTimeoutMs: bounded('S3_IDLE_TIMEOUT_MS', 'idleTimeoutMs'),
    localHugePages:
      r.oneOf('LOCAL_READ_HUGE_PAGES', 'true', ['true', 'false'] as const, (v) => v.toLowerCase()) === 'true',
  };
  try {
    return resolveStorageSettings(partial);
  } catch (e) {
    problems.push((e as Error).message);
    return resolveStorageSettings({ kind: base.kind ?? 'local' });
  }
}

// Real deployments use S3, often with credentials from an instance role (no variables at all), so an explicit
// OBJECT_STORE wins; otherwise any sign of S3 configuration selects it, and a bare machine gets the local store.
function chooseObjectStore(env: Env, r: Reader): { kind: ObjectStoreKind; reason: string } {
  if (env.OBJECT_STORE !== undefined) {
    return {
      kind: r.oneOf('OBJECT_STORE', 's3', OBJECT_STORES, (v) => v.toLowerCase()),
      reason: 'OBJECT_STORE',
    };
  }
  const hints = [
    'S3_ENDPOINT_URL',
    'AWS_ACCESS_KEY_ID',
    'AWS_PROFILE',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  ].filter((k) => (env[k] ?? '') !== '');
  return hints.length > 0
    ? { kind: 's3', reason: `${hints[0]} is set` }
    : {
        kind: 'local',
        reason: 'no S3 endpoint or AWS credentials configured (set OBJECT_STORE=s3 to force S3)',
      };
}

/** Parses environment values, collecting one problem per bad setting. */
class Reader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}, got "${v}"`);
      return fallback;
    }
    return Number(v);
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
      this.problems.push(`${name} must be a number from ${min} to ${max}, got "${v}"`);
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(name: string, fallback: T, choices: readonly T[], normalize = (v: string) => v): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = normalize(v) as T;
    if (!choices.includes(n)) {
      this.problems.push(`${name} must be one of ${choices.join(', ')}, got "${v}"`);
      return fallback;
    }
    return n;
  }
}
