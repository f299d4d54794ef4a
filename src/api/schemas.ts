// The wire contract with k-NN's remote-build client as TypeBox schemas: the single source for request
// validation, response serialization (no extra field can reach a k-NN response) and the OpenAPI document.
import { type SchemaOptions, type Static, Type } from '@sinclair/typebox';

import { JOB_PHASES, TASK_STATUSES } from '../jobs/job.js';
import { DATA_TYPES, SPACE_TYPES } from '../vectors/types.js';

/** Explicit bounds on every input (documented in API.md). */
export const LIMITS = {
  pathLength: 1024,
  containerNameLength: 255,
  tenantIdLength: 256,
  minDimension: 1,
  /** float, half_float and byte (k-NN's own limit for Faiss). */
  maxDimension: 16_000,
  /** binary, in bits: k-NN's binary-quantized fields send bytes x 8, beyond 16,000. */
  maxBinaryDimension: 65_536,
  /** doc_count must be > 4: Faiss misbehaves on 3-4 vectors. */
  minDocCount: 5,
  maxDocCount: 100_000_000,
  // k-NN only requires m, ef_construction and ef_search > 0 (Java ints): every such value is accepted, and the
  // builders clamp extreme ones (src/builders/hnsw-params.ts says how and why).
  minM: 1,
  maxM: 2 ** 31 - 1,
  minEf: 1,
  maxEf: 2 ** 31 - 1,
} as const;

/** A string enum as JSON Schema `enum` (one clear validation error instead of one per anyOf branch). */
const StringEnum = <T extends readonly string[]>(values: T, options: SchemaOptions = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

const int = (minimum: number, maximum: number, def: number | undefined, description: string) =>
  Type.Integer({ minimum, maximum, ...(def === undefined ? {} : { default: def }), description });

// Unknown keys at any level are accepted and ignored (newer k-NN releases add fields: skip_stored_vectors came in
// 3.7); the build route drops them before the job is made and logs each new one once at debug.
export const AlgorithmParameters = Type.Object(
  {
    ef_construction: int(LIMITS.minEf, LIMITS.maxEf, 100, 'Size of the candidate list while building.'),
    ef_search: int(LIMITS.minEf, LIMITS.maxEf, 100, 'Size of the candidate list while searching (stored).'),
    m: int(LIMITS.minM, LIMITS.maxM, 16, 'HNSW M: links per node on upper levels, 2*M on the base level.'),
  },
  { additionalProperties: true, default: {} },
);

export const IndexParameters = Type.Object(
  {
    space_type: StringEnum(SPACE_TYPES, {
      default: 'l2',
      description:
        'l2, innerproduct (cosine arrives as innerproduct), hamming (binary data only). Binary data is always built and searched by Hamming distance, whatever its space_type.',
    }),
    algorithm: StringEnum(['hnsw'] as const, { default: 'hnsw' }),
    algorithm_parameters: AlgorithmParameters,
  },
  { additionalProperties: true, default: {} },
);

export const BuildRequest = Type.Object(
  {
    repository_type: StringEnum(['s3'] as const, { default: 's3', description: 'Only s3.' }),
    container_name: Type.String({
      minLength: 1,
      maxLength: LIMITS.containerNameLength,
      pattern: '^[^\\x00-\\x1f/]+$',
      description: 'The bucket (S3) or the sub-folder of the local store.',
    }),
    vector_path: Type.String({
      minLength: 8,
      maxLength: LIMITS.pathLength,
      pattern: '^[^\\x00-\\x1f]*\\.knnvec$',
      description: 'Object key of the vectors; must end in .knnvec.',
    }),
    doc_id_path: Type.String({
      minLength: 1,
      maxLength: LIMITS.pathLength,
      pattern: '^[^\\x00-\\x1f]+$',
      description: 'Object key of the doc ids (.knndid).',
    }),
    tenant_id: Type.String({
      maxLength: LIMITS.tenantIdLength,
      default: '',
      description: 'The cluster name.',
    }),
    dimension: int(
      LIMITS.minDimension,
      LIMITS.maxBinaryDimension,
      undefined,
      `Elements per vector, at most ${LIMITS.maxDimension} (binary: bits, a multiple of 8, at most ${LIMITS.maxBinaryDimension}).`,
    ),
    doc_count: int(LIMITS.minDocCount, LIMITS.maxDocCount, undefined, 'Number of vectors and doc ids.'),
    data_type: StringEnum(DATA_TYPES, {
      default: 'float',
      description: 'float, half_float, byte or binary.',
    }),
    engine: StringEnum(['faiss'] as const, { default: 'faiss' }),
    index_parameters: IndexParameters,
    skip_stored_vectors: Type.Boolean({
      default: false,
      description: 'Return the graph only (a CAGRA layout over Faiss null storage) instead of the vectors.',
    }),
  },
  { additionalProperties: true },
);
export type BuildRequest = Static<typeof BuildRequest>;

export const BuildResponse = Type.Object({ job_id: Type.String() }, { additionalProperties: false });

export const StatusParams = Type.Object({ job_id: Type.String({ maxLength: 128 }) });

/** Exactly the three fields k-NN's parser accepts; nulls allowed, nothing else ever. */
export const StatusResponse = Type.Object(
  {
    task_status: StringEnum(TASK_STATUSES),
    file_name: Type.Union([Type.String(), Type.Null()]),
    error_message: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type StatusResponse = Static<typeof StatusResponse>;

export const ErrorResponse = Type.Object({ detail: Type.String() });

export const ValidationErrorResponse = Type.Object({
  detail: Type.Literal('Validation Error'),
  errors: Type.Array(Type.Object({ field: Type.String(), message: Type.String(), type: Type.String() })),
});

export const JobSummary = Type.Object({
  job_id: Type.String(),
  task_status: StringEnum(TASK_STATUSES),
  phase: StringEnum(JOB_PHASES),
  container_name: Type.String(),
  vector_path: Type.String(),
  tenant_id: Type.String(),
  dimension: Type.Integer(),
  doc_count: Type.Integer(),
  data_type: Type.String(),
  builder: Type.Union([StringEnum(['gpu', 'cpu'] as const), Type.Null()]),
  progress: Type.Number({ description: 'Fraction of the current phase done, 0..1.' }),
  bytes_downloaded: Type.Number(),
  bytes_uploaded: Type.Number({ description: 'Bytes sent to the store.' }),
  bytes_copied: Type.Number({
    description: 'Bytes of the index the store copied from the vectors object itself (not sent).',
  }),
  upload_path: Type.Union([StringEnum(['copy', 'stream'] as const), Type.Null()], {
    description: "'copy': the stored vectors were copied store-side; 'stream': every byte was sent.",
  }),
  upload_path_reason: Type.Union([Type.String(), Type.Null()], {
    description: "Why the upload path was 'stream'.",
  }),
  timing: Type.Union(
    [
      Type.Object({
        download_seconds: Type.Number(),
        build_seconds: Type.Number(),
        upload_seconds: Type.Number(),
        wall_seconds: Type.Number({
          description: 'From the start of the download to the index in the store.',
        }),
        copy_seconds: Type.Number({
          description: 'Seconds of the store-side copy of the stored vectors started before the build.',
        }),
        copy_during_build_seconds: Type.Number({
          description: 'Of copy_seconds, those while the graph built.',
        }),
        overlap_reason: Type.Union([Type.String(), Type.Null()], {
          description: 'Why the copy did not run during the build (null when it did).',
        }),
      }),
      Type.Null(),
    ],
    {
      description:
        "A finished job's phase times and how the vectors' copy overlapped the build; null before.",
    },
  ),
  file_name: Type.Union([Type.String(), Type.Null()]),
  error_message: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
  started_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  estimated_host_bytes: Type.Number(),
  estimated_gpu_bytes: Type.Number(),
  replica: Type.Optional(
    Type.Union([Type.String(), Type.Null()], {
      description: 'QUEUE_BACKEND=redis: the replica running (or that ran) the job; null while queued.',
    }),
  ),
});
export type JobSummary = Static<typeof JobSummary>;

export const JobsResponse = Type.Object({
  count: Type.Integer(),
  queued: Type.Integer(),
  running: Type.Integer(),
  jobs: Type.Array(JobSummary),
});

export const HeartBeatResponse = Type.Object({
  status: StringEnum(['ok', 'degraded'] as const, {
    description: 'degraded: the process is up but its job backend (Redis) is not reachable.',
  }),
  queue_backend: Type.Optional(StringEnum(['memory', 'redis'] as const)),
  backend: Type.Optional(StringEnum(['up', 'down'] as const)),
  replica: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
});
