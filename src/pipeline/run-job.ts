// The whole job, in the order it happens: download vectors and ids (in parallel) -> parse -> build the graph
// (GPU or CPU) -> write the Faiss file straight into the upload -> the bare file name k-NN downloads.
// Runs inside the job's worker process (worker.ts); everything it needs comes in through `deps`.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';

import type { BuildSpec, JobSpec } from '../build-spec.js';
import type { BuilderKind, BuildParams, GraphBuilder } from '../builders/types.js';
import { type FormatPolicy, chooseFormat } from '../faiss-format/policy.js';
import {
  type FaissIndexInput,
  faissIndexReadable,
  faissIndexSize,
  splitAroundStoredVectors,
  writeFaissIndex,
} from '../faiss-format/writer.js';
import type { ProgressUpdate } from '../jobs/job.js';
import type { ComposedObject, HostBlob, ObjectInfo, ObjectLocation, ObjectStore } from '../storage/types.js';
import { knndidReadOptions, parseDocIdBlob } from '../vectors/knndid.js';
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

/** The service's places: everything in the job's container, the index next to the vectors. */
export function ioForRequest(store: ObjectStore, spec: JobSpec): JobIo {
  const at = (key: string): Place => ({ store, at: { container: spec.containerName, key } });
  return {
    vectors: at(spec.vectorPath),
    ids: at(spec.docIdPath),
    output: at(indexKeyFor(spec.vectorPath)),
  };
}

export interface PipelineDeps {
  io: JobIo;
  builders: Partial<Record<BuilderKind, GraphBuilder>>;
  formatPolicy: FormatPolicy;
  /** Builder settings the spec does not carry (threads, GPU options). */
  buildDefaults: Pick<BuildParams, 'threads' | 'gpu'>;
  /** Write the file to this folder first and upload it from there (default: stream it into the upload). */
  spoolDir?: string;
  /** Copy the stored vectors store-side from the `.knnvec` where the format allows (default true). */
  copyStoredVectors?: boolean;
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
  /** Bytes this job sent to the store (the rest of the index was copied there from the vectors). */
  bytesUploaded: number;
  /** Bytes of the index the store copied from the `.knnvec` itself. */
  bytesCopied: number;
  /** How the index got to the store: its vectors copied store-side, or every byte sent (and why). */
  uploadPath: UploadPath;
  peakDeviceBytes: number;
  format: string;
}

export interface UploadPath {
  path: 'copy' | 'stream';
  reason?: string;
}

export async function runJob(spec: BuildSpec, builder: BuilderKind, deps: PipelineDeps): Promise<JobResult> {
  const clock = new PhaseClock();
  const blob: VectorBlobSpec = { dataType: spec.dataType, dimension: spec.dimension, count: spec.docCount };
  validateVectorSpec(blob);

  deps.report({ phase: 'downloading', fraction: 0 });
  const { vectorInfo, vectorBlob, idBlob } = await download(spec, blob, deps);
  const vectors = parseVectorBlob(vectorBlob, blob);
  const ids = parseDocIdBlob(idBlob, spec.docCount);
  clock.lap('download');

  deps.report({ phase: 'building', fraction: 0 });
  const format = chooseFormat(
    { dataType: spec.dataType, builder, skipStoredVectors: spec.skipStoredVectors },
    deps.formatPolicy,
  );
  const built = await buildGraph(spec, builder, vectors, format.needsHierarchicalGraph, deps);
  clock.lap('build');

  deps.report({ phase: 'uploading', fraction: 0 });
  const index: FaissIndexInput = {
    format,
    graph: built.graph,
    vectors,
    ids,
    spaceType: buildSpaceType(spec),
    efConstruction: spec.efConstruction,
    efSearch: spec.efSearch,
  };
  const uploaded = await upload(index, deps.io.output, vectorInfo, vectorBlob, deps);
  clock.lap('upload');

  return {
    fileName: path.posix.basename(deps.io.output.at.key),
    builder,
    seconds: clock.laps as JobResult['seconds'],
    buildStages: { ...built.stageSeconds },
    bytesDownloaded: vectorInfo.size + idBlob.byteLength,
    bytesUploaded: uploaded.bytesSent,
    bytesCopied: uploaded.bytesCopied,
    uploadPath: uploaded.reason ? { path: uploaded.path, reason: uploaded.reason } : { path: uploaded.path },
    peakDeviceBytes: built.peakDeviceBytes,
    format: `${format.index}/${format.storage}`,
  };
}

/**
 * The space the graph is built and searched in. Binary is always Hamming: k-NN sends binary-quantized fields
 * with their field's space_type (l2, innerproduct), yet Faiss's binary indexes know only Hamming distance (the
 * reference builder does the same).
 */
export function buildSpaceType(spec: BuildSpec): SpaceType {
  return spec.dataType === 'binary' ? 'hamming' : spec.spaceType;
}

/** The index object's key: next to the vectors, `.knnvec` replaced by `.faiss`. */
export function indexKeyFor(vectorPath: string): string {
  return vectorPath.replace(/\.knnvec$/, '.faiss');
}

async function download(spec: BuildSpec, blob: VectorBlobSpec, deps: PipelineDeps) {
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
        ...knnvecReadOptions(blob),
        signal,
        onProgress: progress('vectors'),
      }),
    ),
    task(
      ids.store.read(ids.at, {
        ...knndidReadOptions(spec.docCount),
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
  spec: BuildSpec,
  kind: BuilderKind,
  vectors: VectorSet,
  hierarchical: boolean,
  deps: PipelineDeps,
) {
  const builder = deps.builders[kind];
  if (!builder) throw new Error(`the ${kind} builder is not available in this process`);
  const lease = kind === 'gpu' ? await deps.acquireGpu() : undefined;
  try {
    const params: BuildParams = {
      spaceType: buildSpaceType(spec),
      m: spec.m,
      efConstruction: spec.efConstruction,
      efSearch: spec.efSearch,
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

interface Uploaded {
  bytesSent: number;
  bytesCopied: number;
  path: 'copy' | 'stream';
  reason?: string;
}

async function upload(
  index: FaissIndexInput,
  target: Place,
  like: ObjectInfo,
  vectorBlob: HostBlob,
  deps: PipelineDeps,
): Promise<Uploaded> {
  const total = faissIndexSize(index);
  const onProgress = (bytes: number) => deps.report({ bytesUploaded: bytes, fraction: bytes / total });
  const options = { signal: deps.signal, encryptLike: like, onProgress };
  const copy = copyPlan(index, target, vectorBlob, deps);
  if (copy.split) {
    const { bytesSent, bytesCopied, path, reason } = await target.store.writeComposed!(
      target.at,
      copy.split,
      options,
    );
    deps.report({ bytesUploaded: bytesSent, upload: { path, bytesCopied, ...(reason ? { reason } : {}) } });
    return { bytesSent, bytesCopied, path, ...(reason ? { reason } : {}) };
  }
  const streamed = (bytes: number): Uploaded => {
    deps.report({ bytesUploaded: bytes, upload: { path: 'stream', reason: copy.reason!, bytesCopied: 0 } });
    return { bytesSent: bytes, bytesCopied: 0, path: 'stream', reason: copy.reason! };
  };
  if (!deps.spoolDir) {
    const { bytes } = await target.store.write(target.at, faissIndexReadable(index), options);
    return streamed(bytes);
  }
  // Spooling (a setting): the whole file on local disk first, then uploaded from there.
  const dir = await mkdtemp(path.join(deps.spoolDir, 'index-'));
  try {
    const file = path.join(dir, path.posix.basename(target.at.key));
    deps.report({ phase: 'writing', fraction: 0 });
    await writeFaissIndex(index, createWriteStream(file), { signal: deps.signal });
    deps.report({ phase: 'uploading', fraction: 0 });
    const { bytes } = await target.store.write(target.at, createReadStream(file), options);
    return streamed(bytes);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The index cut around its stored vectors, for the store to copy them from the `.knnvec`; else why not. */
function copyPlan(
  index: FaissIndexInput,
  target: Place,
  vectorBlob: HostBlob,
  deps: PipelineDeps,
): { split: ComposedObject; reason?: undefined } | { split?: undefined; reason: string } {
  const source = deps.io.vectors;
  if (deps.copyStoredVectors === false)
    return { reason: 'copying is turned off (COPY_STORED_VECTORS=false)' };
  if (deps.spoolDir) return { reason: 'the index is spooled to disk first (INDEX_SPOOL_DIR)' };
  if (source.store !== target.store || !target.store.writeComposed) {
    return { reason: 'the vectors are in another store than the index' };
  }
  if (vectorBlob.version === undefined) return { reason: 'the store gave no version for the vectors' };
  const split = splitAroundStoredVectors(index);
  if (!split) return { reason: `the ${index.format.storage} storage holds converted vectors` };
  if (split.vectorBytes !== vectorBlob.byteLength) {
    return { reason: 'the stored vectors are not the whole vectors object' };
  }
  return {
    split: {
      before: split.before,
      beforeBytes: split.beforeBytes,
      after: split.after,
      afterBytes: split.afterBytes,
      copy: {
        source: source.at,
        sourceVersion: vectorBlob.version,
        start: 0,
        bytes: split.vectorBytes,
        local: vectorBlob.chunks,
      },
    },
  };
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
