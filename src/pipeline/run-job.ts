// The whole job, in the order it happens: download vectors and ids (in parallel) -> parse -> build the graph
// (GPU or CPU) -> write the Faiss file straight into the upload -> the bare file name k-NN downloads. Where the
// index repeats the `.knnvec` (float, binary), the store copies that part itself from the start of the job, while
// the rest runs (startEarlyCopy).
// Runs inside the job's worker process (worker.ts); everything it needs comes in through `deps`.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';

import type { BuildSpec, JobSpec } from '../build-spec.js';
import type { BuilderKind, BuildParams, GraphBuilder } from '../builders/types.js';
import { needsHierarchicalGraph } from '../faiss-format/formats.js';
import { type FormatPolicy, chooseFormat } from '../faiss-format/policy.js';
import {
  type FaissIndexInput,
  type FaissIndexShape,
  faissIndexReadable,
  faissIndexSize,
  keepsInputBytes,
  type StoredBytes,
  type StoredVectorsPlacement,
  splitAroundStoredVectors,
  storedVectorBytes,
  storedVectorsPlacement,
  writeFaissIndex,
} from '../faiss-format/writer.js';
import type { ProgressUpdate } from '../jobs/job.js';
import type {
  SentRange,
  ComposeResult,
  ComposedObject,
  ComposedWrite,
  CopyRange,
  HostBlob,
  MultipartEvent,
  ObjectInfo,
  ObjectLocation,
  ObjectStore,
} from '../storage/types.js';
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
  /** Told of the index's multipart upload (S3) opening and closing, for the service to abort if this dies. */
  onMultipart?: (event: MultipartEvent) => void;
  /** Waits for the GPU this build may use (one build per device). */
  acquireGpu(): Promise<{ device: number; release(): void }>;
}

export interface JobResult {
  fileName: string;
  builder: BuilderKind;
  /** Seconds spent in each phase (the store-side copy of the vectors may run during build: see overlap). */
  seconds: Record<'download' | 'build' | 'upload', number>;
  /** Seconds from the job's start to the index in the store. */
  wallSeconds: number;
  /** The store-side copy of the stored vectors and how much of it ran while the graph built. */
  overlap: Overlap;
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

export interface Overlap {
  /** Seconds the store-side copy of the stored vectors took (0 when nothing was copied early). */
  copySeconds: number;
  /** Of those, the seconds before the build ended (the copy starts with the download: both hide it). */
  copyDuringBuildSeconds: number;
  /** Why the copy did not start early (or was redone after the build), when it did not. */
  reason?: string;
}

export interface UploadPath {
  path: 'copy' | 'stream';
  reason?: string;
}

export async function runJob(spec: BuildSpec, builder: BuilderKind, deps: PipelineDeps): Promise<JobResult> {
  const clock = new PhaseClock();
  const blob: VectorBlobSpec = { dataType: spec.dataType, dimension: spec.dimension, count: spec.docCount };
  validateVectorSpec(blob);

  const format = chooseFormat(
    { dataType: spec.dataType, builder, skipStoredVectors: spec.skipStoredVectors },
    deps.formatPolicy,
  );
  const shape: FaissIndexShape = {
    format,
    vectors: { dataType: spec.dataType, dimension: spec.dimension, count: spec.docCount },
    spaceType: buildSpaceType(spec),
    efConstruction: spec.efConstruction,
    efSearch: spec.efSearch,
  };

  deps.report({ phase: 'downloading', fraction: 0 });
  const transfers = startDownload(spec, blob, deps);
  // The stored vectors start copying store-side as soon as the vectors object's version is known (its HEAD),
  // while they download and the graph builds: the file's layout is planned from the request alone. Whatever
  // fails before the upload takes the write over gives it up (no object, multipart upload or temporary file).
  let early: EarlyCopy | undefined;
  const earlyStarted = transfers.vectorInfo.then(
    (info) => (early = startEarlyCopy(spec, builder, shape, info, transfers.vectorChunks, deps)),
    () => undefined, // the download reports the failure
  );
  let downloaded, vectors, built;
  try {
    downloaded = await transfers.done;
    await earlyStarted;
    vectors = parseVectorBlob(downloaded.vectorBlob, blob);
    clock.lap('download');
    if (
      early!.write &&
      early!.middle === 'input' &&
      downloaded.vectorBlob.version !== downloaded.vectorInfo.version
    ) {
      // Changed between its HEAD and its read: the copy holds other bytes than ours. Copy again after the build.
      early!.reason =
        'the vectors object changed while it was downloaded: the vectors were copied again after the build';
      const write = early!.write;
      early!.write = undefined;
      await write.abort(new Error(early!.reason));
    }
    deps.report({ phase: 'building', fraction: 0 });
    let buildStarted!: () => void;
    const started = new Promise<void>((resolve) => (buildStarted = resolve));
    const building = buildGraph(spec, builder, vectors, format.needsHierarchicalGraph, deps, buildStarted);
    // Converted storages (no store holds their bytes): ours are made and sent to their place while the graph
    // builds. Made once the build is under way (its GPU lease taken, its native work started), as encoding int8
    // codes holds this thread for a moment: before that, it would hold up the lease's reply and the build's start.
    if (!early!.write && !keepsInputBytes(format.storage, spec.dataType)) {
      building.catch(() => undefined); // awaited below; not unhandled meanwhile
      await Promise.race([started, building]);
      early = startEarlySend(spec, builder, shape, vectors, downloaded.vectorInfo, deps) ?? early;
    }
    built = await building;
  } catch (e) {
    await earlyStarted;
    await early?.write?.abort(e);
    throw e;
  }
  const started = early!;
  const { vectorInfo, vectorBlob, ids, idBytes } = downloaded;
  const index: Omit<FaissIndexInput, 'graph'> = { ...shape, vectors, ids };
  clock.lap('build');

  deps.report({ phase: 'uploading', fraction: 0 });
  const uploaded = await upload(
    { ...index, graph: built.graph },
    deps.io.output,
    vectorInfo,
    vectorBlob,
    deps,
    started,
  );
  clock.lap('upload');
  const overlap = started.timing(clock.at('build'));
  const phaseSeconds = clock.laps as JobResult['seconds'];
  deps.report({
    timing: {
      ...phaseSeconds,
      wall: clock.total(),
      copy: overlap.copySeconds,
      copyDuringBuild: overlap.copyDuringBuildSeconds,
      ...(overlap.reason ? { overlapReason: overlap.reason } : {}),
    },
  });

  return {
    fileName: path.posix.basename(deps.io.output.at.key),
    builder,
    seconds: phaseSeconds,
    wallSeconds: clock.total(),
    overlap,
    buildStages: { ...built.stageSeconds },
    bytesDownloaded: vectorInfo.size + idBytes,
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

/** The job's downloads, started: the vectors object's HEAD, its bytes (as they will be) and all of it parsed. */
interface Transfers {
  readonly vectorInfo: Promise<ObjectInfo>;
  /** The vectors' bytes once downloaded (for a copy started before they have arrived); rejects if they fail. */
  readonly vectorChunks: Promise<readonly Uint8Array[]>;
  readonly done: Promise<{ vectorInfo: ObjectInfo; vectorBlob: HostBlob; ids: Int32Array; idBytes: number }>;
}

function startDownload(spec: BuildSpec, blob: VectorBlobSpec, deps: PipelineDeps): Transfers {
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
    // The ids are parsed as soon as they arrive, while the vectors are still downloading.
    task(
      ids.store
        .read(ids.at, {
          ...knndidReadOptions(spec.docCount),
          signal,
          onProgress: progress('ids'),
        })
        .then((read) => ({ ids: parseDocIdBlob(read, spec.docCount), bytes: read.byteLength })),
    ),
  ] as const;
  const all = (async () => {
    try {
      const [vectorInfo, vectorBlob, idSet] = await Promise.all(tasks);
      return { vectorInfo, vectorBlob, ids: idSet.ids, idBytes: idSet.bytes };
    } catch (e) {
      await Promise.allSettled(tasks);
      throw e; // the first failure (the others were aborted because of it)
    }
  })();
  const vectorChunks = tasks[1].then((b) => b.chunks);
  // Handled by whoever awaits them (done: the job; the others may have no listener when the download fails).
  for (const p of [tasks[0], vectorChunks]) p.catch(() => undefined);
  return { vectorInfo: tasks[0], vectorChunks, done: all };
}

async function buildGraph(
  spec: BuildSpec,
  kind: BuilderKind,
  vectors: VectorSet,
  hierarchical: boolean,
  deps: PipelineDeps,
  /** Called once the builder has its inputs and its native work is queued (after the GPU lease, if any). */
  onStarted: () => void = () => undefined,
) {
  const builder = deps.builders[kind];
  if (!builder) throw new Error(`the ${kind} builder is not available in this process`);
  const lease = kind === 'gpu' ? await deps.acquireGpu() : undefined;
  try {
    const params = buildParams(spec, hierarchical, deps, lease?.device);
    deps.signal.throwIfAborted();
    const built = builder.build(vectors, params, (fraction) => deps.report({ fraction }), deps.signal);
    onStarted();
    return await built;
  } finally {
    lease?.release();
  }
}

function buildParams(
  spec: BuildSpec,
  hierarchical: boolean,
  deps: PipelineDeps,
  device?: number,
): BuildParams {
  return {
    spaceType: buildSpaceType(spec),
    m: spec.m,
    efConstruction: spec.efConstruction,
    efSearch: spec.efSearch,
    hierarchical,
    ...deps.buildDefaults,
    ...(device !== undefined ? { gpu: { ...deps.buildDefaults.gpu, device } } : {}),
  };
}

/**
 * The stored vectors' early write, started before the build (or why not): copied store-side from the `.knnvec`
 * from the job's start, or (converted storages such as fp16) our bytes of them sent once downloaded.
 */
interface EarlyCopy {
  /** Cleared when the write was given up before the build (the vectors changed while downloaded). */
  write?: ComposedWrite;
  /** The sizes the write was started with: the built file must have exactly these. */
  readonly placement?: StoredVectorsPlacement;
  /** The middle: the input's bytes (copied) or the vectors as held in memory (sent). */
  readonly middle?: StoredBytes;
  /** Why the copy did not start before the build, or was redone after it. */
  reason?: string;
  /** Whether the write's progress counts as the upload's (false while the graph builds). */
  uploading: boolean;
  timing(buildEnded: number): Overlap;
}

function notStarted(reason: string): EarlyCopy {
  return { reason, uploading: false, timing: () => ({ copySeconds: 0, copyDuringBuildSeconds: 0, reason }) };
}

/**
 * Starts copying the stored vectors to their place in the index while they download and the graph builds. The
 * copy is of the object's version at its HEAD; our own bytes of it (`vectorChunks`) are needed only where the
 * store sends instead of copying, or checks a copy.
 */
function startEarlyCopy(
  spec: BuildSpec,
  kind: BuilderKind,
  shape: FaissIndexShape,
  info: ObjectInfo,
  vectorChunks: Promise<readonly Uint8Array[]>,
  deps: PipelineDeps,
): EarlyCopy {
  const refused = copyRefusal(deps.io.output, info.version, deps);
  if (refused) return notStarted(refused);
  if (!keepsInputBytes(shape.format.storage, shape.vectors.dataType)) {
    return notStarted(`the ${shape.format.storage} storage holds converted vectors`);
  }
  const planned = earlyPlacement(spec, kind, shape, 'input', deps);
  if ('reason' in planned) return notStarted(planned.reason);
  if (planned.placement.vectorBytes !== info.size) {
    return notStarted('the stored vectors are not the whole vectors object');
  }
  const copy = storedVectorsRange(deps, info.version!, info.size, vectorChunks);
  return startEarly(planned.placement, 'input', copy, info, deps);
}

/**
 * For storages that hold the vectors converted (fp16 from half_float, int8 codes from byte): those bytes are sent
 * to their place in the index while the graph builds (no store has them to copy). int8 codes are encoded here,
 * into buffers as large as the vectors (the admission estimate counts them), held until the job ends. Undefined
 * where that cannot be (a store without started writes, settings that send every byte after the build, codes
 * that could not be allocated): the upload then sends them after the build, as before.
 */
function startEarlySend(
  spec: BuildSpec,
  kind: BuilderKind,
  shape: FaissIndexShape,
  vectors: VectorSet,
  like: ObjectInfo,
  deps: PipelineDeps,
): EarlyCopy | undefined {
  if (deps.copyStoredVectors === false || deps.spoolDir) return undefined; // every byte after the build, as set
  const planned = earlyPlacement(spec, kind, shape, 'memory', deps);
  if ('reason' in planned) return undefined;
  let local;
  try {
    local = storedVectorBytes(vectors, shape.format.storage);
  } catch (e) {
    return notStarted(`the int8 codes could not be made before the upload: ${(e as Error).message}`);
  }
  const bytes = local.reduce((n, c) => n + c.byteLength, 0);
  if (planned.placement.vectorBytes !== bytes) return undefined;
  const sent = `the ${shape.format.storage} storage holds converted vectors`;
  return startEarly(planned.placement, 'memory', { sent, bytes, local }, like, deps);
}

/**
 * Where the stored vectors sit in the index, known before the vectors or the graph exist: from the builder's
 * planned layout (both builders draw every node's level up front from count, M and seed); the upload checks the
 * built graph against it. Or why it cannot be known.
 */
function earlyPlacement(
  spec: BuildSpec,
  kind: BuilderKind,
  shape: FaissIndexShape,
  from: StoredBytes,
  deps: PipelineDeps,
): { placement: StoredVectorsPlacement } | { reason: string } {
  const builder = deps.builders[kind];
  if (!builder?.plannedLayout || !deps.io.output.store.startComposed) {
    return {
      reason: `the ${kind} builder or the ${deps.io.output.store.kind} store cannot start the copy before the build`,
    };
  }
  let layout;
  try {
    const hierarchical = needsHierarchicalGraph(shape.format.index);
    layout = builder.plannedLayout(shape.vectors, buildParams(spec, hierarchical, deps));
  } catch (e) {
    // Bad build options: the build itself says so, in its own words.
    return { reason: `the ${kind} builder could not plan the graph: ${(e as Error).message}` };
  }
  const placement = storedVectorsPlacement(shape, layout, from);
  if (!placement) return { reason: `the ${shape.format.storage} storage holds converted vectors` };
  return { placement };
}

/** The composed write of the index with its middle (the stored vectors) started now. */
function startEarly(
  placement: StoredVectorsPlacement,
  middle: StoredBytes,
  range: CopyRange | SentRange,
  like: ObjectInfo,
  deps: PipelineDeps,
): EarlyCopy {
  const target = deps.io.output;
  const total = placement.beforeBytes + placement.vectorBytes + placement.afterBytes;
  const started = performance.now();
  let ended: number | undefined;
  const early: EarlyCopy = {
    placement,
    middle,
    uploading: false,
    write: target.store.startComposed!(
      target.at,
      { beforeBytes: placement.beforeBytes, afterBytes: placement.afterBytes, copy: range },
      {
        signal: deps.signal,
        ...(deps.onMultipart ? { onMultipart: deps.onMultipart } : {}),
        encryptLike: like,
        onProgress: (bytes) => {
          if (early.uploading) deps.report({ bytesUploaded: bytes, fraction: bytes / total });
        },
      },
    ),
    timing(buildEnded) {
      if (early.reason) return { copySeconds: 0, copyDuringBuildSeconds: 0, reason: early.reason };
      const end = ended ?? performance.now();
      return {
        copySeconds: seconds(end - started),
        copyDuringBuildSeconds: seconds(Math.max(0, Math.min(end, buildEnded) - started)),
      };
    },
  };
  void early.write!.copyEnded.then(() => (ended = performance.now()));
  return early;
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
  early: EarlyCopy,
): Promise<Uploaded> {
  const composed = ({ bytesSent, bytesCopied, path, reason }: ComposeResult): Uploaded => {
    deps.report({ bytesUploaded: bytesSent, upload: { path, bytesCopied, ...(reason ? { reason } : {}) } });
    return { bytesSent, bytesCopied, path, ...(reason ? { reason } : {}) };
  };
  if (early.write) {
    let split;
    try {
      split = splitAroundStoredVectors(index, { from: early.middle }); // validates the whole index first
    } catch (e) {
      await early.write.abort(e);
      throw e;
    }
    const planned = early.placement!;
    if (split?.beforeBytes === planned.beforeBytes && split.afterBytes === planned.afterBytes) {
      early.uploading = true;
      return composed(await early.write.finish(split));
    }
    // A builder whose graph is not what it planned: the early copy sits at the wrong offset. Start over.
    early.reason =
      `the built graph's layout is not the planned one (${split?.beforeBytes ?? 'no'} bytes before the vectors, ` +
      `planned ${planned.beforeBytes}): the vectors were copied again after the build`;
    await early.write.abort(new Error(early.reason));
  }
  const total = faissIndexSize(index);
  const onProgress = (bytes: number) => deps.report({ bytesUploaded: bytes, fraction: bytes / total });
  const options = {
    signal: deps.signal,
    encryptLike: like,
    onProgress,
    ...(deps.onMultipart ? { onMultipart: deps.onMultipart } : {}),
  };
  const copy = copyPlan(index, target, vectorBlob, deps);
  if (copy.split) return composed(await target.store.writeComposed!(target.at, copy.split, options));
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
  const refused = copyRefusal(target, vectorBlob.version, deps);
  if (refused) return { reason: refused };
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
      copy: storedVectorsRange(deps, vectorBlob.version!, vectorBlob.byteLength, vectorBlob.chunks),
    },
  };
}

/** Why the store cannot copy the vectors into the index whatever its format, or undefined. */
function copyRefusal(target: Place, version: string | undefined, deps: PipelineDeps): string | undefined {
  if (deps.copyStoredVectors === false) return 'copying is turned off (COPY_STORED_VECTORS=false)';
  if (deps.spoolDir) return 'the index is spooled to disk first (INDEX_SPOOL_DIR)';
  if (deps.io.vectors.store !== target.store || !target.store.writeComposed) {
    return 'the vectors are in another store than the index';
  }
  if (version === undefined) return 'the store gave no version for the vectors';
  return undefined;
}

/** The whole `.knnvec` (this version of it) as the range the index repeats; `local`: our bytes of it. */
function storedVectorsRange(
  deps: PipelineDeps,
  version: string,
  bytes: number,
  local: CopyRange['local'],
): CopyRange {
  return { source: deps.io.vectors.at, sourceVersion: version, start: 0, bytes, local };
}

function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}

class PhaseClock {
  readonly laps: Record<string, number> = {};
  private readonly started = performance.now();
  private readonly ends: Record<string, number> = {};
  private last = this.started;

  lap(name: string): void {
    const now = performance.now();
    this.laps[name] = seconds(now - this.last);
    this.ends[name] = now;
    this.last = now;
  }

  /** When the phase `name` ended (performance.now()). */
  at(name: string): number {
    return this.ends[name]!;
  }

  total(): number {
    return seconds(this.last - this.started);
  }
}
