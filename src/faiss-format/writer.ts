// The streaming Faiss index writer (layout: README.md, "Byte layout"). The file is a list of
// sections; each knows its exact size and yields its bytes as pieces of a few MiB: the neighbor array and the
// vectors as views over the caller's memory, computed arrays (offsets, int64 ids, int8 codes) one fresh piece at a
// time. So memory use stays flat whatever the file size, and the upload can start with the first piece.
import { Readable } from 'node:stream';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { nativeConvert } from '../vectors/fp16.js';
import type { DataType, VectorArray, VectorSet } from '../vectors/types.js';
import { FieldWriter } from './bytes.js';
import type { StorageKind } from './formats.js';
import {
  CAGRA_NUMERIC_TYPE,
  METRIC_L2,
  SQ_QTYPE,
  idMapFourcc,
  isBinaryIndex,
  isCagraIndex,
  metricType,
  storageFourcc,
} from './formats.js';
import type { FaissIndexInput, FaissIndexShape, ResolvedGraph } from './validate.js';
import {
  DEFAULT_BASE_LEVEL_SEARCH_ENTRYPOINTS,
  resolveGraph,
  resolveLayout,
  validateFaissIndexInput,
} from './validate.js';
import type { HnswLayout } from './hnsw-graph.js';

export type { FaissIndexInput, FaissIndexShape } from './validate.js';

export interface FaissWriterOptions {
  /** Largest piece yielded, in bytes (default 4 MiB). */
  readonly pieceBytes?: number;
}

const DEFAULT_PIECE_BYTES = 4 << 20;
/** Faiss writes two retired header fields with this value. */
const HEADER_DUMMY = 1 << 20;

interface Section {
  readonly name: string;
  readonly bytes: number;
  chunks(pieceBytes: number): Iterable<Uint8Array>;
  /**
   * A storage section whose vectors are written as they are in memory (or, for int8 codes, as storedVectorBytes
   * encodes them): the bytes before them, and whether those are the input's bytes unchanged ('input': the
   * `.knnvec`) or only ours ('memory': fp16 from half_float, int8 codes from byte).
   */
  readonly stored?: { readonly prefix: Uint8Array; readonly bytes: StoredBytes };
}

/** Which stored vectors a split cuts around: the input's own bytes only, or also ours (storedVectorBytes). */
export type StoredBytes = 'input' | 'memory';

function storedSectionAt(all: Section[], from: StoredBytes): number {
  return all.findIndex((s) => s.stored && (from === 'memory' || s.stored.bytes === 'input'));
}

/** The exact size of the file faissIndexChunks() produces for this input (reads the levels, not the neighbors). */
export function faissIndexSize(input: FaissIndexInput): number {
  return sections(input, resolveGraph(input.graph, input.vectors.count)).reduce((sum, s) => sum + s.bytes, 0);
}

/** Name, offset and size of each section, for logs and the inspect tool. */
export function faissIndexSections(
  input: FaissIndexInput,
): { name: string; offset: number; bytes: number }[] {
  let offset = 0;
  return sections(input, resolveGraph(input.graph, input.vectors.count)).map(({ name, bytes }) => {
    const entry = { name, offset, bytes };
    offset += bytes;
    return entry;
  });
}

/**
 * The file as a sequence of byte chunks. Validates the whole input (graph, ids, vectors) before the first chunk,
 * so a bad graph fails before anything is uploaded. Chunks may be views of the input: keep it unchanged until
 * they are consumed.
 */
export function* faissIndexChunks(
  input: FaissIndexInput,
  options: FaissWriterOptions = {},
): Generator<Uint8Array> {
  const pieceBytes = checkPieceBytes(options);
  const graph = validateFaissIndexInput(input);
  for (const section of sections(input, graph)) yield* emit(section, pieceBytes);
}

/** The file cut around the stored vectors: `before` + the vectors exactly as given + `after`. */
export interface FaissIndexSplit {
  readonly before: Iterable<Uint8Array>;
  readonly beforeBytes: number;
  /** Bytes of the stored vectors (= the input's vector bytes), at offset beforeBytes. */
  readonly vectorBytes: number;
  readonly after: Iterable<Uint8Array>;
  readonly afterBytes: number;
}

/**
 * For storages that keep the input's vector bytes unchanged (flat float, binary): the file as the bytes before
 * the vectors, the vectors, and the bytes after them (the id map), so a store can copy the vectors from the
 * object they came from. Undefined for converted or absent storages. Validates the input like faissIndexChunks.
 */
export function splitAroundStoredVectors(
  input: FaissIndexInput,
  options: FaissWriterOptions & { from?: StoredBytes } = {},
): FaissIndexSplit | undefined {
  const pieceBytes = checkPieceBytes(options);
  const all = sections(input, validateFaissIndexInput(input));
  const at = storedSectionAt(all, options.from ?? 'input');
  if (at < 0) return undefined;
  const storage = all[at]!;
  const prefix = storage.stored!.prefix;
  const head = all.slice(0, at);
  const tail = all.slice(at + 1);
  const sum = (list: Section[]) => list.reduce((n, s) => n + s.bytes, 0);
  return {
    before: (function* () {
      for (const section of head) yield* emit(section, pieceBytes);
      yield prefix;
    })(),
    beforeBytes: sum(head) + prefix.length,
    vectorBytes: storage.bytes - prefix.length,
    after: (function* () {
      for (const section of tail) yield* emit(section, pieceBytes);
    })(),
    afterBytes: sum(tail),
  };
}

/** Where the stored vectors sit in the file: bytes before them, theirs, bytes after. */
export interface StoredVectorsPlacement {
  readonly beforeBytes: number;
  readonly vectorBytes: number;
  readonly afterBytes: number;
}

/**
 * splitAroundStoredVectors's sizes for a graph of this shape, known before the graph exists (its links change
 * no size): so a store can copy the vectors to their final offset while the graph builds. Undefined for converted
 * or absent storages. Checks the shape, not the links (the split, once the graph exists, checks everything).
 */
export function storedVectorsPlacement(
  input: FaissIndexShape,
  layout: HnswLayout,
  from: StoredBytes = 'input',
): StoredVectorsPlacement | undefined {
  // Sizes only: no section's bytes are produced, so the values, ids, links and entry point need not exist yet.
  const shaped: FaissIndexInput = {
    ...input,
    vectors: { ...input.vectors, chunks: [] },
    ids: new Int32Array(0),
    graph: { ...layout, neighbors: new Int32Array(0), entryPoint: -1, maxLevel: -1 },
  };
  const all = sections(shaped, resolveLayout(layout, input.vectors.count));
  const at = storedSectionAt(all, from);
  if (at < 0) return undefined;
  const sum = (list: Section[]) => list.reduce((n, s) => n + s.bytes, 0);
  const prefix = all[at]!.stored!.prefix.length;
  return {
    beforeBytes: sum(all.slice(0, at)) + prefix,
    vectorBytes: all[at]!.bytes - prefix,
    afterBytes: sum(all.slice(at + 1)),
  };
}

function checkPieceBytes(options: FaissWriterOptions): number {
  const pieceBytes = options.pieceBytes ?? DEFAULT_PIECE_BYTES;
  if (!Number.isInteger(pieceBytes) || pieceBytes < 8 || pieceBytes % 8 !== 0) {
    throw new RangeError(`pieceBytes must be a positive multiple of 8, got ${pieceBytes}`);
  }
  return pieceBytes;
}

function* emit(section: Section, pieceBytes: number): Generator<Uint8Array> {
  let emitted = 0;
  for (const chunk of section.chunks(pieceBytes)) {
    emitted += chunk.byteLength;
    if (chunk.byteLength > 0) yield chunk;
  }
  // A guard on this module's own arithmetic: faissIndexSize() promised these bytes.
  if (emitted !== section.bytes)
    throw new Error(`section ${section.name} emitted ${emitted} bytes, planned ${section.bytes}`);
}

/** The file as a byte stream (e.g. the body of an object store upload). */
export function faissIndexReadable(input: FaissIndexInput, options: FaissWriterOptions = {}): Readable {
  return Readable.from(faissIndexChunks(input, options), { objectMode: false });
}

export interface WriteFaissIndexOptions extends FaissWriterOptions {
  /** End the sink after the last chunk and wait for 'finish' (default true). */
  readonly end?: boolean;
  readonly signal?: AbortSignal;
}

/**
 * Writes the file to `sink` (stream/promises pipeline: it waits for 'drain' whenever the sink asks for
 * backpressure, and rejects on the sink's error, an early close or an abort); resolves with the bytes written.
 * With `end` (the default) it also waits for 'finish', so when the sink is a PassThrough whose other side feeds an
 * upload, run the upload concurrently rather than after this resolves. On failure the sink is destroyed.
 */
export async function writeFaissIndex(
  input: FaissIndexInput,
  sink: Writable,
  options: WriteFaissIndexOptions = {},
): Promise<number> {
  let written = 0;
  function* counted(): Generator<Uint8Array> {
    for (const chunk of faissIndexChunks(input, options)) {
      written += chunk.byteLength;
      yield chunk;
    }
  }
  try {
    await pipeline(counted(), sink, {
      end: options.end ?? true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    // The reason the caller gave (not pipeline's generic AbortError), and words for a sink that went away.
    options.signal?.throwIfAborted();
    if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE')
      throw new Error('the sink closed before the Faiss index was completely written', { cause: error });
    throw error;
  }
  return written;
}

// ---------------------------------------------------------------------------------------------------------------
// Layout

function sections(input: FaissIndexInput, graph: ResolvedGraph): Section[] {
  const { format, vectors } = input;
  const binary = isBinaryIndex(format.index);
  const top = idMapFourcc(format.index);
  const header = (w: FieldWriter) =>
    binary
      ? binaryHeader(w, vectors.dimension, vectors.count)
      : floatHeader(w, vectors.dimension, vectors.count, metricType(input.spaceType));
  return [
    fixed(top, header(new FieldWriter().fourcc(top))),
    fixed(format.index, indexPrefix(input, graph, header)),
    ...hnswSections(input, graph),
    storageSection(input, header),
    idMapSection(vectors.count, input.ids),
  ];
}

function fixed(name: string, w: FieldWriter): Section {
  return { name, bytes: w.length, chunks: () => [w.bytes()] };
}

// Faiss's write_index_header: d, ntotal, two retired fields, is_trained, metric_type.
function floatHeader(w: FieldWriter, d: number, ntotal: number, metric: number): FieldWriter {
  return w.i32(d).i64(ntotal).i64(HEADER_DUMMY).i64(HEADER_DUMMY).u8(1).i32(metric);
}

// Faiss's write_index_binary_header: d (bits), code_size, ntotal, is_trained, metric_type (Faiss's default L2).
function binaryHeader(w: FieldWriter, d: number, ntotal: number): FieldWriter {
  return w
    .i32(d)
    .i32(d / 8)
    .i64(ntotal)
    .u8(1)
    .i32(METRIC_L2);
}

// The index fourcc, its header and, for the CAGRA layouts, their fields before the HNSW struct.
function indexPrefix(
  input: FaissIndexInput,
  graph: ResolvedGraph,
  header: (w: FieldWriter) => FieldWriter,
): FieldWriter {
  const { index, storage } = input.format;
  const w = header(new FieldWriter().fourcc(index));
  if (!isCagraIndex(index)) return w;
  w.u8(1); // keep_max_size_level0, as Faiss's CAGRA indexes have it
  w.u8(graph.baseLevelOnly ? 1 : 0);
  w.i32(input.numBaseLevelSearchEntrypoints ?? DEFAULT_BASE_LEVEL_SEARCH_ENTRYPOINTS);
  if (index === 'IHc2') {
    const half = storage === 'sq-fp16' || (storage === 'none' && input.vectors.dataType === 'half_float');
    w.i32(half ? CAGRA_NUMERIC_TYPE.float16 : CAGRA_NUMERIC_TYPE.float32);
  }
  return w;
}

function hnswSections(input: FaissIndexInput, graph: ResolvedGraph): Section[] {
  const { count, cum, assignProbas, levels, slots } = graph;
  const probas = new FieldWriter().i64(assignProbas.length);
  for (const p of assignProbas) probas.f64(p);
  const cumFields = new FieldWriter().i64(cum.length);
  for (const c of cum) cumFields.i32(c);
  const tail = new FieldWriter()
    .i32(input.graph.entryPoint)
    .i32(input.graph.maxLevel)
    .i32(input.efConstruction)
    .i32(input.efSearch)
    .i32(1); // upper_beam, retired: Faiss always writes 1
  return [
    fixed('hnsw.assign_probas', probas),
    fixed('hnsw.cum_nneighbor_per_level', cumFields),
    arraySection('hnsw.levels', count, 4, (piece) => (levels ? views(levels, piece) : ones(count, piece))),
    arraySection('hnsw.offsets', count + 1, 8, (piece) => offsetPieces(graph, piece)),
    arraySection('hnsw.neighbors', slots, 4, (piece) => views(input.graph.neighbors, piece)),
    fixed('hnsw.tail', tail),
  ];
}

/** A Faiss vector: uint64 element count, then the elements. */
function arraySection(
  name: string,
  count: number,
  elementBytes: number,
  body: (piece: number) => Iterable<Uint8Array>,
): Section {
  return {
    name,
    bytes: 8 + count * elementBytes,
    *chunks(piece) {
      yield new FieldWriter().i64(count).bytes();
      yield* body(piece);
    },
  };
}

const bytesOf = (c: ArrayBufferView): Uint8Array => new Uint8Array(c.buffer, c.byteOffset, c.byteLength);

/** Byte views over a typed array, `piece` bytes at a time. */
function* views(array: ArrayBufferView, piece: number): Generator<Uint8Array> {
  const bytes = bytesOf(array);
  for (let at = 0; at < bytes.length; at += piece)
    yield bytes.subarray(at, Math.min(at + piece, bytes.length));
}

// levels for a base-level-only graph: all 1. One read-only block of ones, yielded as often as needed.
function* ones(count: number, piece: number): Generator<Uint8Array> {
  const block = new Int32Array(Math.min(count, piece / 4)).fill(1);
  const bytes = new Uint8Array(block.buffer);
  for (let left = count; left > 0; left -= block.length)
    yield bytes.subarray(0, Math.min(left, block.length) * 4);
}

// offsets[0] = 0, offsets[i+1] = offsets[i] + cum[levels[i]], as uint64 (written as two uint32 words).
function* offsetPieces(graph: ResolvedGraph, piece: number): Generator<Uint8Array> {
  const { count, cum, levels } = graph;
  const stride = cum[1]!;
  const perPiece = piece / 8;
  let offset = 0;
  for (let first = 0; first <= count; first += perPiece) {
    const n = Math.min(perPiece, count + 1 - first);
    const words = new Uint32Array(2 * n);
    for (let k = 0; k < n; k++) {
      const i = first + k;
      if (levels) {
        if (i > 0) offset += cum[levels[i - 1]!]!;
      } else {
        offset = i * stride;
      }
      words[2 * k] = offset % 0x100000000;
      words[2 * k + 1] = Math.floor(offset / 0x100000000);
    }
    yield new Uint8Array(words.buffer);
  }
}

function storageSection(input: FaissIndexInput, header: (w: FieldWriter) => FieldWriter): Section {
  const { vectors, format } = input;
  const fourcc = storageFourcc(format.storage, input.spaceType);
  if (format.storage === 'none') return fixed(`storage ${fourcc}`, new FieldWriter().fourcc(fourcc));
  const codeBytes = codeSize(format.storage, vectors.dimension);
  const dataBytes = vectors.count * codeBytes;
  const w = header(new FieldWriter().fourcc(fourcc));
  if (format.storage === 'flat') w.i64(dataBytes / 4); // Faiss counts flat storage in floats
  if (format.storage === 'sq-fp16' || format.storage === 'sq-int8') {
    const qtype = format.storage === 'sq-fp16' ? SQ_QTYPE.fp16 : SQ_QTYPE['8bit_direct_signed'];
    // ScalarQuantizer: qtype, rangestat (min-max), rangestat_arg, d, code_size, trained (empty for these types).
    w.i32(qtype).i32(0).f32(0).i64(vectors.dimension).i64(codeBytes).i64(0);
    w.i64(dataBytes);
  }
  if (format.storage === 'binary-flat') w.i64(dataBytes);
  const prefix = w.bytes();
  const encode = format.storage === 'sq-int8' ? int8Codes : views;
  return {
    name: `storage ${fourcc}`,
    bytes: prefix.length + dataBytes,
    stored: { prefix, bytes: keepsInputBytes(format.storage, vectors.dataType) ? 'input' : 'memory' },
    *chunks(piece) {
      yield prefix;
      for (const chunk of vectors.chunks) yield* encode(chunk, piece);
    },
  };
}

/**
 * The storage section's vector bytes, in order: what a split's middle holds. Views of the vectors where the
 * storage writes them unchanged (flat float, binary, fp16 from half_float); for int8 codes (byte), new buffers
 * as large as the vectors, encoded now (native threads), which the caller holds until they are sent.
 */
export function storedVectorBytes(vectors: VectorSet, storage: StorageKind): Uint8Array[] {
  return vectors.chunks.map((c) => (storage === 'sq-int8' ? int8CodesOf(bytesOf(c)) : bytesOf(c)));
}

/** Whether the storage holds the vectors exactly as k-NN sent them (the `.knnvec` bytes). */
export function keepsInputBytes(storage: StorageKind, dataType: DataType): boolean {
  return (storage === 'flat' && dataType === 'float') || (storage === 'binary-flat' && dataType === 'binary');
}

/** Bytes per stored vector. */
function codeSize(storage: StorageKind, dimension: number): number {
  switch (storage) {
    case 'flat':
      return 4 * dimension;
    case 'sq-fp16':
      return 2 * dimension;
    case 'sq-int8':
      return dimension;
    case 'binary-flat':
      return dimension / 8;
    case 'none':
      return 0;
  }
}

// QT_8bit_direct_signed stores value + 128 as a byte, which for two's-complement int8 is a flip of the top bit.
function* int8Codes(chunk: VectorArray, piece: number): Generator<Uint8Array> {
  const src = bytesOf(chunk);
  for (let at = 0; at < src.length; at += piece)
    yield int8CodesOf(src.subarray(at, Math.min(at + piece, src.length)));
}

function int8CodesOf(part: Uint8Array): Uint8Array {
  const out = new Uint8Array(part.length);
  const native = nativeConvert();
  if (native) {
    native.int8Codes(part, out);
    return out;
  }
  const words = Math.floor(part.length / 4);
  if (part.byteOffset % 4 === 0) {
    const inWords = new Uint32Array(part.buffer, part.byteOffset, words);
    const outWords = new Uint32Array(out.buffer, 0, words);
    for (let i = 0; i < words; i++) outWords[i] = inWords[i]! ^ 0x80808080;
  } else {
    for (let i = 0; i < words * 4; i++) out[i] = part[i]! ^ 0x80;
  }
  for (let i = words * 4; i < part.length; i++) out[i] = part[i]! ^ 0x80;
  return out;
}

// The int64 id map: each int32 doc id widened (ids are validated non-negative, so the high word is 0).
/** The id map of `count` ids (validation made ids.length === count before any byte is written). */
function idMapSection(count: number, ids: Int32Array): Section {
  return arraySection('id_map', count, 8, function* (piece) {
    const perPiece = piece / 8;
    for (let first = 0; first < ids.length; first += perPiece) {
      const n = Math.min(perPiece, ids.length - first);
      const words = new Int32Array(2 * n);
      for (let k = 0; k < n; k++) words[2 * k] = ids[first + k]!;
      yield new Uint8Array(words.buffer);
    }
  });
}
