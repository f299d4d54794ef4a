// The whole job, in the order it happens: download vectors and ids (in parallel) -> parse -> build the graph
// (GPU or CPU) -> write the Faiss file straight into the upload -> the bare file name k-NN downloads.
// Runs inside the job's worker process (worker.ts); everything it needs comes in through `deps`.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';

import type { BuildRequest } from '../api/schemas.js';
import type { BuilderKind, BuildParams, GraphBuilder } from '../builders/types.js';
import { type FormatPolicy, chooseFormat } from '../faiss-format/policy.js';
import {
  type FaissIndexInput,
  faissIndexReadable,
  faissIndexSize,
  writeFaissIndex,
} from '../faiss-format/writer.js';
import type { ProgressUpdate } from '../jobs/job.js';
import type { ObjectInfo, ObjectLocation, ObjectStore } from '../storage/types.js';
import { parseDocIdBlob } from '../vectors/knndid.js';
import {
  type VectorBlobSpec,
  knnvecReadOptions,
  parseVectorBlob,
  validateVectorSpec,
} from '../vectors/knnvec.js';
import type { SpaceType, VectorSet } from '../vectors/types.js';

/** An object in a store. */
export interface Place {
  store: ObjectStore;
  at: ObjectLocation;
}

/** Where a job reads and writes; the service derives it from the request, the CLI from its arguments. */
export interface JobIo {
  vectors: Place;
  ids: Place;
  output: Place;
}

/** The service's places: everything in the request's container, the index next to the vectors. */
export function ioForRequest(store: ObjectStore, request: BuildRequest): JobIo {
  const at = (key: string): Place => ({ store, at: { container: request.container_name, key } });
  return {
    vectors: at(request.vector_path),
    ids: at(request.doc_id_path),
    output: at(indexKeyFor(request.vector_path)),
  };
}

export interface PipelineDeps {
  io: JobIo;
  builders: Partial<Record<BuilderKind, GraphBuilder>>;
  formatPolicy: FormatPolicy;
  /** Builder settings the request does not carry (threads, GPU options). */
  buildDefaults: Pick<BuildParams, 'threads' | 'gpu'>;
  /** Write the file to this folder first and upload it from there (default: stream it into the upload). */
  spoolDir?: string;
  signal: AbortSignal;
  report(update: ProgressUpdate): void;
  /** Waits for the GPU this build may use (one build per device). */
  acquireGpu(): Promise<{ device: number; release(): void }>;
}

export interface JobResult {
  fileName: string;
  builder: BuilderKind;
  /** Seconds spent in each phase. */
  seconds: Record<'download' | 'build' | 'upload', number>;
  /** The builder's own stages (e.g. knn, prune), seconds. */
  buildStages: Record<string, number>;
  bytesDownloaded: number;
  bytesUploaded: number;
  peakDeviceBytes: number;
  format: string;
}

export async function runJob(
  request: BuildRequest,
  builder: BuilderKind,
  deps: PipelineDeps,
): Promise<JobResult> {
  const clock = new PhaseClock();
  const spec: VectorBlobSpec = {
    dataType: request.data_type,
    dimension: request.dimension,
    count: request.doc_count,
  };
  validateVectorSpec(spec);

  deps.report({ phase: 'downloading', fraction: 0 });
  const { vectorInfo, vectorBlob, idBlob } = await download(request, spec, deps);
  const vectors = parseVectorBlob(vectorBlob, spec);
  const ids = parseDocIdBlob(idBlob, request.doc_count);
  clock.lap('download');

  deps.report({ phase: 'building', fraction: 0 });
  const format = chooseFormat(
    { dataType: request.data_type, builder, skipStoredVectors: request.skip_stored_vectors },
    deps.formatPolicy,
  );
  const built = await buildGraph(request, builder, vectors, format.needsHierarchicalGraph, deps);
  clock.lap('build');

  deps.report({ phase: 'uploading', fraction: 0 });
  const index: FaissIndexInput = {
    format,
    graph: built.graph,
    vectors,
    ids,
    spaceType: buildSpaceType(request),
    efConstruction: request.index_parameters.algorithm_parameters.ef_construction,
    efSearch: request.index_parameters.algorithm_parameters.ef_search,
  };
  const uploaded = await upload(index, deps.io.output, vectorInfo, deps);
  clock.lap('upload');

  return {
    fileName: path.posix.basename(deps.io.output.at.key),
    builder,
    seconds: clock.laps as JobResult['seconds'],
    buildStages: { ...built.stageSeconds },
    bytesDownloaded: vectorInfo.size + idBlob.byteLength,
    bytesUploaded: uploaded,
    peakDeviceBytes: built.peakDeviceBytes,
    format: `${format.index}/${format.storage}`,
  };
}

/**
 * The space the graph is built and searched in. Binary is always Hamming: k-NN sends binary-quantized fields
 * with their field's space_type (l2, innerproduct), yet Faiss's binary indexes know only Hamming distance (the
 * reference builder does the same).
 */
export function buildSpaceType(request: BuildRequest): SpaceType {
  return request.data_type === 'binary' ? 'hamming' : request.index_parameters.space_type;
}

/** The index object's key: next to the vectors, `.knnvec` replaced by `.faiss`. */
export function indexKeyFor(vectorPath: string): string {
  return vectorPath.replace(/\.knnvec$/, '.faiss');
}

async function download(request: BuildRequest, spec: VectorBlobSpec, deps: PipelineDeps) {
  const { vectors, ids } = deps.io;
  const done = { vectors: 0, ids: 0 };
  const total = { vectors: 1, ids: 1 };
  const progress = (which: 'vectors' | 'ids') => (bytesDone: number, bytesTotal: number) => {
    done[which] = bytesDone;
    total[which] = Math.max(1, bytesTotal);
    deps.report({
      bytesDownloaded: done.vectors + done.ids,
      fraction: (done.vectors + done.ids) / (total.vectors + total.ids),
    });
  };
  // The first failure aborts the other transfers (and waits for them to stop): nothing runs on, or reports
  // progress, after the job has failed.
  const failed = new AbortController();
  const signal = AbortSignal.any([deps.signal, failed.signal]);
  const task = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e: unknown) => {
      failed.abort(e);
      throw e;
    });
  const tasks = [
    task(vectors.store.head(vectors.at, signal)),
    task(
      vectors.store.read(vectors.at, {
        ...knnvecReadOptions(spec),
        signal,
        onProgress: progress('vectors'),
      }),
    ),
    task(
      ids.store.read(ids.at, {
        expectedBytes: 4 * request.doc_count,
        expectedBytesMeaning: `doc_count ${request.doc_count} x 4 bytes per doc id; check doc_count against the uploaded .knndid`,
        signal,
        onProgress: progress('ids'),
      }),
    ),
  ] as const;
  let vectorInfo, vectorBlob, idBlob;
  try {
    [vectorInfo, vectorBlob, idBlob] = await Promise.all(tasks);
  } catch (e) {
    await Promise.allSettled(tasks);
    throw e; // the first failure (the others were aborted because of it)
  }
  return { vectorInfo, vectorBlob, idBlob };
}

async function buildGraph(
  request: BuildRequest,
  kind: BuilderKind,
  vectors: VectorSet,
  hierarchical: boolean,
  deps: PipelineDeps,
) {
  const builder = deps.builders[kind];
  if (!builder) throw new Error(`the ${kind} builder is not available in this process`);
  const lease = kind === 'gpu' ? await deps.acquireGpu() : undefined;
  try {
    const p = request.index_parameters.algorithm_parameters;
    const params: BuildParams = {
      spaceType: buildSpaceType(request),
      m: p.m,
      efConstruction: p.ef_construction,
      efSearch: p.ef_search,
      hierarchical,
      ...deps.buildDefaults,
      ...(lease ? { gpu: { ...deps.buildDefaults.gpu, device: lease.device } } : {}),
    };
    deps.signal.throwIfAborted();
    return await builder.build(vectors, params, (fraction) => deps.report({ fraction }), deps.signal);
  } finally {
    lease?.release();
  }
}

async function upload(index: FaissIndexInput, target: Place, like: ObjectInfo, deps: PipelineDeps) {
  const total = faissIndexSize(index);
  const onProgress = (bytes: number) => deps.report({ bytesUploaded: bytes, fraction: bytes / total });
  const options = { signal: deps.signal, encryptLike: like, onProgress };
  if (!deps.spoolDir) {
    const { bytes } = await target.store.write(target.at, faissIndexReadable(index), options);
    return bytes;
  }
  // Spooling (a setting): the whole file on local disk first, then uploaded from there.
  const dir = await mkdtemp(path.join(deps.spoolDir, 'index-'));
  try {
    const file = path.join(dir, path.posix.basename(target.at.key));
    deps.report({ phase: 'writing', fraction: 0 });
    await writeFaissIndex(index, createWriteStream(file), { signal: deps.signal });
    deps.report({ phase: 'uploading', fraction: 0 });
    const { bytes } = await target.store.write(target.at, createReadStream(file), options);
    return bytes;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

class PhaseClock {
  readonly laps: Record<string, number> = {};
  private last = performance.now();

  lap(name: string): void {
    const now = performance.now();
    this.laps[name] = Math.round(now - this.last) / 1000;
    this.last = now;
  }
}
