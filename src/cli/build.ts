// `knn-build build`: one index from local files or s3:// URLs, without the server, through the same pipeline.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { LIMITS } from '../api/schemas.js';
import type { BuildSpec } from '../build-spec.js';
import { CpuBuilder, MAX_THREADS } from '../builders/cpu.js';
import { GpuBuilder } from '../builders/gpu.js';
import { clampHnswParameters } from '../builders/hnsw-params.js';
import { BUILDER_CHOICES, loadStorageSettings } from '../config.js';
import { gpuInfo, noGpu } from '../builders/native.js';
import type { BuilderKind, GraphBuilder } from '../builders/types.js';
import { formatPolicy, FORMAT_POLICY_NAMES } from '../faiss-format/policy.js';
import { createObjectStore } from '../storage/index.js';
import type { ObjectStore } from '../storage/types.js';
import { DATA_TYPES, SPACE_TYPES } from '../vectors/types.js';
import { createPlanner } from '../jobs/plan.js';
import { type Place, runJob } from '../pipeline/run-job.js';
import { ProgressBar } from './progress-bar.js';

export const BUILD_USAGE = `usage: knn-build build --vectors <file|s3://bucket/key> --doc-ids <file|s3://…> --dimension <d>
                      [--count <n>] [--data-type float|half_float|byte|binary] [--space-type l2|innerproduct|hamming]
                      [--m 16] [--ef-construction 100] [--ef-search 100] [--builder auto|gpu|cpu]
                      [--format-policy ${FORMAT_POLICY_NAMES.join('|')}] [--skip-stored-vectors] [--threads 0]
                      --out <file|s3://bucket/key>
  S3 URLs use the service's S3 settings (S3_ENDPOINT_URL, S3_CHECKSUMS, S3_CONCURRENCY, ... see README) and
  the standard AWS ones (AWS_DEFAULT_REGION, credentials chain).
  --count defaults to the size of the doc-ids object / 4.`;

/** "s3://bucket/key" or a local path, as a store and a location in it. */
export function placeOf(
  target: string,
  stores: { s3: () => ObjectStore; local: (root: string) => ObjectStore },
): Place {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(target);
  if (m) return { store: stores.s3(), at: { container: m[1]!, key: m[2]! } };
  if (target.startsWith('s3://')) throw new Error(`"${target}" is not s3://bucket/key`);
  // A local file: its folder is the container, inside a store rooted one level up.
  const abs = path.resolve(target);
  const folder = path.dirname(abs);
  return {
    store: stores.local(path.dirname(folder)),
    at: { container: path.basename(folder), key: path.basename(abs) },
  };
}

export async function buildCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      vectors: { type: 'string' },
      'doc-ids': { type: 'string' },
      out: { type: 'string' },
      dimension: { type: 'string' },
      count: { type: 'string' },
      'data-type': { type: 'string', default: 'float' },
      'space-type': { type: 'string' },
      m: { type: 'string', default: '16' },
      'ef-construction': { type: 'string', default: '100' },
      'ef-search': { type: 'string', default: '100' },
      builder: { type: 'string', default: 'auto' },
      'format-policy': { type: 'string', default: 'compatible' },
      'skip-stored-vectors': { type: 'boolean', default: false },
      threads: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(BUILD_USAGE);
    return 0;
  }
  const need = (name: 'vectors' | 'doc-ids' | 'out' | 'dimension') => {
    const v = values[name];
    if (!v) throw new UsageError(`--${name} is required`);
    return v;
  };
  const dataType = oneOf('--data-type', values['data-type'], DATA_TYPES);
  const spaceType = oneOf(
    '--space-type',
    values['space-type'] ?? (dataType === 'binary' ? 'hamming' : 'l2'),
    SPACE_TYPES,
  );

  const storeCache = new Map<string, ObjectStore>();
  const stores = {
    s3: () => cached(storeCache, 's3', () => createObjectStore(s3Settings())),
    local: (root: string) =>
      cached(storeCache, `local:${root}`, () => createObjectStore({ kind: 'local', localRoot: root })),
  };
  const [vectorsArg, idsArg, out] = [need('vectors'), need('doc-ids'), need('out')];
  if (!out.startsWith('s3://')) mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const io = {
    vectors: placeOf(vectorsArg, stores),
    ids: placeOf(idsArg, stores),
    output: placeOf(out, stores),
  };
  const count = values.count
    ? int('--count', values.count, LIMITS.minDocCount, LIMITS.maxDocCount)
    : (await io.ids.store.head(io.ids.at)).size / 4;

  // The same bounds as the API (api/schemas.ts LIMITS) and the same HNSW clamping as the service.
  const spec: BuildSpec = {
    dimension: int(
      '--dimension',
      need('dimension'),
      LIMITS.minDimension,
      dataType === 'binary' ? LIMITS.maxBinaryDimension : LIMITS.maxDimension,
    ),
    docCount: count,
    dataType,
    spaceType,
    ...clampHnswParameters({
      m: int('--m', values.m, LIMITS.minM, LIMITS.maxM),
      efConstruction: int('--ef-construction', values['ef-construction'], LIMITS.minEf, LIMITS.maxEf),
      efSearch: int('--ef-search', values['ef-search'], LIMITS.minEf, LIMITS.maxEf),
    }).params,
    skipStoredVectors: values['skip-stored-vectors'],
  };
  const threads = int('--threads', values.threads, 0, MAX_THREADS);
  const setting = oneOf('--builder', values.builder, BUILDER_CHOICES);
  // The service's planner (one place chooses the builder); no memory limits: this machine runs this build alone.
  const { builder, reason } = createPlanner({
    builder: setting,
    gpu: setting === 'cpu' ? noGpu('--builder cpu') : gpuInfo(0),
    gpuMemoryLimitBytes: Infinity,
    cpuMemoryLimitBytes: Infinity,
    gpuOptions: {},
    buildThreads: threads,
  })(spec);
  process.stderr.write(`builder: ${builder} (${reason})\n`);
  const builders: Record<BuilderKind, GraphBuilder> = {
    cpu: new CpuBuilder({ threads }),
    gpu: new GpuBuilder({ threads }),
  };

  const bar = new ProgressBar();
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort(new Error('interrupted')));
  try {
    const result = await runJob(spec, builder, {
      io,
      builders,
      formatPolicy: formatPolicy(values['format-policy']),
      buildDefaults: { threads },
      signal: abort.signal,
      report: (u) => bar.update(u),
      acquireGpu: async () => ({ device: 0, release: () => undefined }),
    });
    bar.done(
      `wrote ${values.out} (${result.format}, ${(result.bytesUploaded / 2 ** 20).toFixed(1)} MiB, ${result.builder} builder; ` +
        `download ${result.seconds.download}s, build ${result.seconds.build}s, upload ${result.seconds.upload}s)`,
    );
    return 0;
  } finally {
    await Promise.all([...storeCache.values()].map((s) => s.close()));
  }
}

/** S3 settings from the same variables and checks as the service (S3_ENDPOINT_URL, S3_CHECKSUMS, ...). */
function s3Settings() {
  return loadStorageSettings('s3', '.');
}

function cached<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let v = cache.get(key);
  if (!v) cache.set(key, (v = make()));
  return v;
}

export class UsageError extends Error {}

function int(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

function oneOf<T extends string>(name: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`${name} must be one of ${choices.join(', ')}, got "${value}"`);
  }
  return value as T;
}
