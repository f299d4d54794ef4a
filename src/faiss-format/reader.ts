// A reader for the files our writer produces: it walks every section, checks what Faiss 1.14+ checks and more
// (counts, offsets, neighbor ranges, level tables, id order, header agreement between the nested indexes), and
// returns the structure with its key fields. Large sections are read in windows, so it works on files of any size.
import type { SpaceType } from '../vectors/types.js';
import { printableFourcc } from './bytes.js';
import type { ByteSource } from './byte-source.js';
import { fileSource, memorySource } from './byte-source.js';
import { FaissFormatError } from './errors.js';
import { MAX_DIMENSION } from './validate.js';
import type { IdMapFourcc, IndexFourcc, StorageFourcc } from './formats.js';
import {
  INDEX_FOURCCS,
  METRIC_INNER_PRODUCT,
  METRIC_L2,
  SQ_QTYPE,
  isBinaryIndex,
  isCagraIndex,
} from './formats.js';

export interface FaissSection {
  readonly name: string;
  readonly offset: number;
  readonly bytes: number;
}

export interface FaissIndexSummary {
  readonly fileBytes: number;
  /** Bytes after the id map (Faiss ignores them; our writer emits none). */
  readonly trailingBytes: number;
  readonly idMap: IdMapFourcc;
  readonly index: IndexFourcc;
  readonly storage: StorageFourcc;
  /** Elements per vector (bits for binary). */
  readonly dimension: number;
  readonly ntotal: number;
  /** Header metric_type: 1 = L2, 0 = inner product (binary indexes keep Faiss's default 1). */
  readonly metricType: number;
  readonly metric: SpaceType;
  readonly cagra?: {
    readonly keepMaxSizeLevel0: boolean;
    readonly baseLevelOnly: boolean;
    readonly numBaseLevelSearchEntrypoints: number;
    /** IHc2 only: 0 float32 storage, 1 float16. */
    readonly numericType?: number;
  };
  readonly hnsw: HnswSummary;
  /** Absent for Faiss's null storage. */
  readonly vectors?: {
    readonly codeSize: number;
    readonly bytes: number;
    readonly sqType?: 'fp16' | '8bit_direct_signed';
  };
  readonly ids: { readonly count: number; readonly first: number; readonly last: number };
  readonly sections: readonly FaissSection[];
  /** With `arrays: true`: the raw arrays (for tests and small files). */
  readonly arrays?: {
    readonly levels: Int32Array;
    readonly neighbors: Int32Array;
    readonly ids: Int32Array;
    /** The stored vectors' bytes as in the file (absent for null storage). */
    readonly codes?: Uint8Array;
  };
}

export interface HnswSummary {
  /** Half the level-0 slots per node (Faiss M). */
  readonly M: number;
  readonly assignProbas: readonly number[];
  readonly cumNeighborPerLevel: readonly number[];
  /** nodesPerLevel[l]: nodes whose top level is l. */
  readonly nodesPerLevel: readonly number[];
  /** linksPerLevel[l]: valid (non -1) links at level l over all nodes. */
  readonly linksPerLevel: readonly number[];
  readonly baseDegree: { readonly min: number; readonly max: number; readonly mean: number };
  readonly neighborSlots: number;
  readonly entryPoint: number;
  readonly maxLevel: number;
  readonly efConstruction: number;
  readonly efSearch: number;
}

export interface FaissReadOptions {
  /** Also return levels, neighbors, ids and stored vector bytes. */
  readonly arrays?: boolean;
  /** Window size for large sections (default 4 MiB). */
  readonly windowBytes?: number;
}

/** Reads and checks one of our index files; throws FaissFormatError naming the first problem. */
export function readFaissIndexFile(path: string, options: FaissReadOptions = {}): FaissIndexSummary {
  const source = fileSource(path);
  try {
    return readFaissIndex(source, options);
  } finally {
    source.close();
  }
}

export function readFaissIndex(
  input: ByteSource | Uint8Array,
  options: FaissReadOptions = {},
): FaissIndexSummary {
  const source = input instanceof Uint8Array ? memorySource(input) : input;
  return new IndexReader(source, options).read();
}

const HEADER_DUMMY = 1 << 20;

interface Header {
  d: number;
  ntotal: number;
  metricType: number;
  codeSize?: number;
}

function fail(code: ConstructorParameters<typeof FaissFormatError>[0], message: string): never {
  throw new FaissFormatError(code, message);
}

class IndexReader {
  private pos = 0;
  private readonly sections: FaissSection[] = [];
  private readonly window: number;

  constructor(
    private readonly source: ByteSource,
    private readonly options: FaissReadOptions,
  ) {
    this.window = options.windowBytes ?? 4 << 20;
  }

  read(): FaissIndexSummary {
    const top = this.section('id map', () => this.fourcc('the id map'));
    if (top !== 'IxMp' && top !== 'IBMp') {
      fail('BAD_FOURCC', `not an index file we write: it starts with '${top}', expected 'IxMp' or 'IBMp'`);
    }
    const binary = top === 'IBMp';
    const topHeader = this.header(binary, top);
    this.closeSection(top);

    const indexStart = this.pos;
    const index = this.fourcc('the HNSW index') as IndexFourcc;
    this.checkIndexFourcc(index, binary);
    const header = this.header(binary, index);
    agree(top, topHeader, index, header);
    const cagra = isCagraIndex(index) ? this.cagraFields(index) : undefined;
    this.sections.push({ name: index, offset: indexStart, bytes: this.pos - indexStart });

    const graph = this.hnsw(header.ntotal);
    const storage = this.storage(binary, index, header, cagra?.numericType);
    const ids = this.idMap(header.ntotal);
    checkEntryPoint(index, graph, cagra?.baseLevelOnly ?? false, header.ntotal);
    if (cagra?.baseLevelOnly && graph.topLevel > 1) {
      fail('BAD_FIELD', `${index} says base_level_only but some nodes reach level ${graph.topLevel - 1}`);
    }

    return {
      fileBytes: this.source.size,
      trailingBytes: this.source.size - this.pos,
      idMap: top,
      index,
      storage: storage.fourcc,
      dimension: header.d,
      ntotal: header.ntotal,
      metricType: header.metricType,
      metric: binary ? 'hamming' : header.metricType === METRIC_L2 ? 'l2' : 'innerproduct',
      ...(cagra ? { cagra } : {}),
      hnsw: graph.summary,
      ...(storage.vectors ? { vectors: storage.vectors } : {}),
      ids: ids.summary,
      sections: this.sections,
      ...(this.options.arrays
        ? {
            arrays: {
              levels: graph.levels!,
              neighbors: graph.neighbors!,
              ids: ids.ids!,
              ...(storage.codes ? { codes: storage.codes } : {}),
            },
          }
        : {}),
    };
  }

  // --- primitive reads -------------------------------------------------------------------------------------

  private bytes(length: number, what: string): Uint8Array {
    const left = this.source.size - this.pos;
    if (length > left) {
      fail(
        'TRUNCATED',
        `file truncated: ${what} at byte ${this.pos} needs ${length} bytes but the file ends ${left} bytes later ` +
          `(file size ${this.source.size})`,
      );
    }
    const out = this.source.read(this.pos, length);
    this.pos += length;
    return out;
  }

  private view(length: number, what: string): DataView {
    const b = this.bytes(length, what);
    return new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  private fourcc(what: string): string {
    return printableFourcc(this.bytes(4, `the fourcc of ${what}`));
  }

  private u8(what: string): number {
    return this.view(1, what).getUint8(0);
  }

  private bool(what: string): boolean {
    const at = this.pos;
    const v = this.u8(what);
    if (v > 1)
      fail('BAD_FIELD', `${what} at byte ${at} is ${v}; a bool must be 0 or 1 (Faiss 1.14.3+ rejects it)`);
    return v === 1;
  }

  private i32(what: string): number {
    return this.view(4, what).getInt32(0, true);
  }

  private f32(what: string): number {
    return this.view(4, what).getFloat32(0, true);
  }

  private i64(what: string): number {
    const at = this.pos;
    const v = this.view(8, what).getBigInt64(0, true);
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER))
      fail('BAD_FIELD', `${what} at byte ${at} is ${v}, not a valid size`);
    return Number(v);
  }

  /** A Faiss vector's element count, which must be `expected` when given. */
  private count(what: string, expected?: number, expectation?: string): number {
    const at = this.pos;
    const n = this.i64(`the element count of ${what}`);
    if (expected !== undefined && n !== expected) {
      fail(
        'COUNT_MISMATCH',
        `${what} at byte ${at} holds ${n} elements but ${expectation ?? `${expected} are expected`}`,
      );
    }
    return n;
  }

  /** Skips `length` bytes of array data after checking they are there. */
  private skip(length: number, what: string): void {
    const left = this.source.size - this.pos;
    if (length > left) {
      fail(
        'TRUNCATED',
        `file truncated: ${what} at byte ${this.pos} needs ${length} bytes but only ${left} remain (file size ${this.source.size})`,
      );
    }
    this.pos += length;
  }

  private section<T>(name: string, body: () => T): T {
    const start = this.pos;
    const value = body();
    this.sections.push({ name, offset: start, bytes: this.pos - start });
    return value;
  }

  private closeSection(name: string): void {
    const last = this.sections.pop()!;
    this.sections.push({ name, offset: last.offset, bytes: this.pos - last.offset });
  }

  // --- headers -----------------------------------------------------------------------------------------------

  private header(binary: boolean, owner: string): Header {
    return binary ? this.binaryHeader(owner) : this.floatHeader(owner);
  }

  private floatHeader(owner: string): Header {
    const d = this.i32(`${owner} d`);
    if (d < 1 || d > MAX_DIMENSION)
      fail('BAD_FIELD', `${owner} dimension ${d} is outside [1, ${MAX_DIMENSION}]`);
    const ntotal = this.i64(`${owner} ntotal`);
    for (let i = 0; i < 2; i++) {
      const at = this.pos;
      const dummy = this.i64(`${owner} header`);
      if (dummy !== HEADER_DUMMY)
        fail('BAD_FIELD', `${owner} header field at byte ${at} is ${dummy}, expected ${HEADER_DUMMY}`);
    }
    this.bool(`${owner} is_trained`);
    const metricType = this.i32(`${owner} metric_type`);
    if (metricType !== METRIC_L2 && metricType !== METRIC_INNER_PRODUCT) {
      fail('UNSUPPORTED', `${owner} metric_type ${metricType} is neither 1 (L2) nor 0 (inner product)`);
    }
    return { d, ntotal, metricType };
  }

  private binaryHeader(owner: string): Header {
    const d = this.i32(`${owner} d`);
    const codeSize = this.i32(`${owner} code_size`);
    if (d < 8 || d % 8 !== 0 || codeSize !== d / 8) {
      fail(
        'BAD_FIELD',
        `${owner} has d = ${d} bits and code_size ${codeSize}; d must be a positive multiple of 8 and code_size d / 8`,
      );
    }
    const ntotal = this.i64(`${owner} ntotal`);
    this.bool(`${owner} is_trained`);
    const metricType = this.i32(`${owner} metric_type`);
    return { d, ntotal, metricType, codeSize };
  }

  private checkIndexFourcc(index: string, binary: boolean): void {
    if (!(INDEX_FOURCCS as readonly string[]).includes(index)) {
      fail(
        'BAD_FOURCC',
        `the id map holds '${index}', not one of the HNSW indexes we write (${INDEX_FOURCCS.join(', ')})`,
      );
    }
    if (isBinaryIndex(index as IndexFourcc) !== binary) {
      fail(
        'BAD_FOURCC',
        `${binary ? 'IBMp' : 'IxMp'} cannot hold ${index} (${binary ? 'binary' : 'float'} id maps hold ${binary ? 'IBHf/IBHc' : 'IHNf/IHNc/IHc2/IHNs'})`,
      );
    }
  }

  private cagraFields(index: IndexFourcc) {
    const keepMaxSizeLevel0 = this.bool(`${index} keep_max_size_level0`);
    const baseLevelOnly = this.bool(`${index} base_level_only`);
    const at = this.pos;
    const numBaseLevelSearchEntrypoints = this.i32(`${index} num_base_level_search_entrypoints`);
    if (numBaseLevelSearchEntrypoints < 1) {
      fail(
        'BAD_FIELD',
        `${index} num_base_level_search_entrypoints at byte ${at} is ${numBaseLevelSearchEntrypoints}; it must be >= 1`,
      );
    }
    if (index !== 'IHc2') return { keepMaxSizeLevel0, baseLevelOnly, numBaseLevelSearchEntrypoints };
    const numericType = this.i32('IHc2 numeric_type');
    if (numericType !== 0 && numericType !== 1)
      fail('UNSUPPORTED', `IHc2 numeric_type ${numericType} is not 0 (float32) or 1 (float16)`);
    return { keepMaxSizeLevel0, baseLevelOnly, numBaseLevelSearchEntrypoints, numericType };
  }

  // --- HNSW --------------------------------------------------------------------------------------------------

  private hnsw(ntotal: number) {
    const assignProbas = this.section('hnsw.assign_probas', () => {
      const n = this.count('hnsw.assign_probas');
      if (n < 1 || n > 1000) fail('BAD_FIELD', `hnsw.assign_probas has ${n} levels; expected 1 to 1000`);
      const v = this.view(8 * n, 'hnsw.assign_probas');
      return Array.from({ length: n }, (_, i) => v.getFloat64(8 * i, true));
    });
    const cum = this.section('hnsw.cum_nneighbor_per_level', () => {
      const n = this.count(
        'hnsw.cum_nneighbor_per_level',
        assignProbas.length + 1,
        `assign_probas has ${assignProbas.length} levels, so ${assignProbas.length + 1} are expected`,
      );
      const v = this.view(4 * n, 'hnsw.cum_nneighbor_per_level');
      return Int32Array.from({ length: n }, (_, i) => v.getInt32(4 * i, true));
    });
    if (cum[0] !== 0 || cum[1]! < 1)
      fail(
        'BAD_FIELD',
        `hnsw.cum_nneighbor_per_level must start [0, 2M, ...], got [${Array.from(cum).join(', ')}]`,
      );
    for (let i = 1; i < cum.length; i++) {
      if (cum[i]! < cum[i - 1]!)
        fail('BAD_FIELD', `hnsw.cum_nneighbor_per_level decreases at ${i}: ${cum[i]} < ${cum[i - 1]}`);
    }

    const levelsAt = this.pos + 8;
    const levelStats = this.section('hnsw.levels', () => {
      this.count('hnsw.levels', ntotal, `the index holds ntotal = ${ntotal} vectors`);
      return this.scanLevels(ntotal, cum);
    });
    const offsetsAt = this.pos + 8;
    this.section('hnsw.offsets', () => {
      this.count('hnsw.offsets', ntotal + 1, `ntotal + 1 = ${ntotal + 1} are expected`);
      this.skip(8 * (ntotal + 1), 'hnsw.offsets');
    });
    const neighborsAt = this.pos + 8;
    const slots = this.section('hnsw.neighbors', () => {
      const n = this.count('hnsw.neighbors', levelStats.slots, `the levels need ${levelStats.slots} slots`);
      this.skip(4 * n, 'hnsw.neighbors');
      return n;
    });
    const links = this.scanGraph({
      ntotal,
      cum,
      levelsAt,
      offsetsAt,
      neighborsAt,
      levels: levelStats.levelCount,
    });

    const tail = this.section('hnsw.tail', () => ({
      entryPoint: this.i32('hnsw entry_point'),
      maxLevel: this.i32('hnsw max_level'),
      efConstruction: this.i32('hnsw efConstruction'),
      efSearch: this.i32('hnsw efSearch'),
      upperBeam: this.i32('hnsw upper_beam'),
    }));
    const entryLevel =
      tail.entryPoint >= 0 && tail.entryPoint < ntotal ? this.levelAt(levelsAt, tail.entryPoint) : 0;

    const summary: HnswSummary = {
      M: cum[1]! / 2,
      assignProbas,
      cumNeighborPerLevel: Array.from(cum),
      nodesPerLevel: levelStats.nodesPerLevel,
      linksPerLevel: links.linksPerLevel.slice(0, levelStats.nodesPerLevel.length),
      baseDegree: links.baseDegree,
      neighborSlots: slots,
      entryPoint: tail.entryPoint,
      maxLevel: tail.maxLevel,
      efConstruction: tail.efConstruction,
      efSearch: tail.efSearch,
    };
    const arrays = this.options.arrays
      ? { levels: this.int32At(levelsAt, ntotal), neighbors: this.int32At(neighborsAt, slots) }
      : {};
    return { summary, entryLevel, topLevel: levelStats.nodesPerLevel.length, ...arrays };
  }

  /** First pass over levels: each in [1, cum.length - 1]; histogram and total neighbor slots. */
  private scanLevels(ntotal: number, cum: Int32Array) {
    const top = cum.length - 1;
    const nodesPerLevel: number[] = [];
    let slots = 0;
    const start = this.pos;
    this.skip(4 * ntotal, 'hnsw.levels');
    this.forWindows(start, ntotal, 4, (values, first) => {
      const levels = new Int32Array(values.buffer, values.byteOffset, values.byteLength / 4);
      for (let k = 0; k < levels.length; k++) {
        const level = levels[k]!;
        if (!(level >= 1 && level <= top)) {
          fail(
            'BAD_FIELD',
            `hnsw.levels[${first + k}] = ${level}; a node's level + 1 must be in [1, ${top}]`,
          );
        }
        nodesPerLevel[level - 1] = (nodesPerLevel[level - 1] ?? 0) + 1;
        slots += cum[level]!;
      }
    });
    return { nodesPerLevel: Array.from(nodesPerLevel, (n) => n ?? 0), slots, levelCount: top };
  }

  /** Second pass, node by node: offsets exactly cumulative, neighbor ids in range; link counts per level. */
  private scanGraph(at: {
    ntotal: number;
    cum: Int32Array;
    levelsAt: number;
    offsetsAt: number;
    neighborsAt: number;
    levels: number;
  }) {
    const { ntotal, cum } = at;
    const linksPerLevel = new Array<number>(at.levels).fill(0);
    const baseDegree = { min: Infinity, max: 0, mean: 0 };
    const nodesPerWindow = Math.max(1, Math.floor(this.window / (4 * cum[cum.length - 1]!)));
    let expectedOffset = 0;
    for (let first = 0; first < ntotal; first += nodesPerWindow) {
      const n = Math.min(nodesPerWindow, ntotal - first);
      const levels = this.int32At(at.levelsAt + 4 * first, n);
      const offsets = this.offsetsAt(at.offsetsAt, first, n + 1);
      const span = offsets[n]! - offsets[0]!;
      if (first === 0 && offsets[0] !== 0) fail('BAD_FIELD', `hnsw.offsets[0] is ${offsets[0]}, expected 0`);
      const neighbors = this.int32At(at.neighborsAt + 4 * offsets[0]!, Math.max(0, span));
      for (let k = 0; k < n; k++) {
        const node = first + k;
        const own = cum[levels[k]!]!;
        if (offsets[k] !== expectedOffset || offsets[k + 1] !== expectedOffset + own) {
          fail(
            'BAD_FIELD',
            `hnsw.offsets[${node + 1}] is ${offsets[k + 1]}, expected offsets[${node}] (${offsets[k]}) + cum_nneighbor_per_level[${levels[k]}] (${own}) = ${offsets[k]! + own}`,
          );
        }
        const base = offsets[k]! - offsets[0]!;
        for (let level = 0; level < levels[k]!; level++) {
          let valid = 0;
          for (let j = base + cum[level]!; j < base + cum[level + 1]!; j++) {
            const id = neighbors[j]!;
            if (id === -1) continue;
            if (id < -1 || id >= ntotal) {
              fail(
                'NEIGHBOR_OUT_OF_RANGE',
                `hnsw.neighbors[${offsets[0]! + j}] = ${id} (node ${node}, level ${level}) is outside [-1, ${ntotal})`,
              );
            }
            valid++;
          }
          linksPerLevel[level]! += valid;
          if (level === 0) {
            baseDegree.min = Math.min(baseDegree.min, valid);
            baseDegree.max = Math.max(baseDegree.max, valid);
          }
        }
        expectedOffset += own;
      }
    }
    baseDegree.mean = ntotal > 0 ? linksPerLevel[0]! / ntotal : 0;
    if (ntotal === 0) baseDegree.min = 0;
    return { linksPerLevel, baseDegree };
  }

  private forWindows(
    start: number,
    count: number,
    elementBytes: number,
    body: (bytes: Uint8Array, first: number) => void,
  ): void {
    const perWindow = Math.max(1, Math.floor(this.window / elementBytes));
    for (let first = 0; first < count; first += perWindow) {
      const n = Math.min(perWindow, count - first);
      body(this.aligned(start + first * elementBytes, n * elementBytes), first);
    }
  }

  /** Bytes at an absolute offset, copied when needed so typed views of them are aligned. */
  private aligned(offset: number, length: number): Uint8Array {
    const b = this.source.read(offset, length);
    return b.byteOffset % 8 === 0 ? b : new Uint8Array(b); // a copy, also when b is a Buffer
  }

  private int32At(offset: number, count: number): Int32Array {
    const b = this.aligned(offset, 4 * count);
    return new Int32Array(b.buffer, b.byteOffset, count);
  }

  private levelAt(levelsAt: number, node: number): number {
    return this.int32At(levelsAt + 4 * node, 1)[0]!;
  }

  private offsetsAt(offsetsAt: number, first: number, count: number): number[] {
    const words = new Uint32Array(this.int32At(offsetsAt + 8 * first, 2 * count).slice().buffer);
    return Array.from({ length: count }, (_, i) => words[2 * i]! + words[2 * i + 1]! * 0x100000000);
  }

  // --- storage and ids ---------------------------------------------------------------------------------------

  private storage(binary: boolean, index: IndexFourcc, header: Header, numericType?: number) {
    const start = this.pos;
    const fourcc = this.fourcc('the storage') as StorageFourcc;
    const name = `storage ${fourcc}`;
    const done = <T>(value: T): T => {
      this.sections.push({ name, offset: start, bytes: this.pos - start });
      return value;
    };
    if (fourcc === 'null') {
      return done({ fourcc, vectors: undefined, codes: undefined });
    }
    const expected = expectedStorages(index, header.metricType, numericType);
    if (!expected.includes(fourcc)) {
      fail(
        'BAD_FOURCC',
        `${index} holds storage '${fourcc}' at byte ${start}; expected ${[...expected, 'null'].join(' or ')}`,
      );
    }
    const own = this.header(binary, fourcc);
    agree(index, header, fourcc, own);
    let codeSize: number;
    let sqType: 'fp16' | '8bit_direct_signed' | undefined;
    if (fourcc === 'IxF2' || fourcc === 'IxFI') {
      codeSize = 4 * header.d;
      this.count(
        `${fourcc} vectors`,
        header.ntotal * header.d,
        `ntotal × d = ${header.ntotal} × ${header.d} floats are expected`,
      );
    } else if (fourcc === 'IxSQ') {
      ({ codeSize, sqType } = this.scalarQuantizer(header, index, numericType));
      this.count(
        'IxSQ codes',
        header.ntotal * codeSize,
        `ntotal × code_size = ${header.ntotal} × ${codeSize} bytes are expected`,
      );
    } else {
      codeSize = header.codeSize!;
      this.count(
        'IBxF codes',
        header.ntotal * codeSize,
        `ntotal × code_size = ${header.ntotal} × ${codeSize} bytes are expected`,
      );
    }
    const bytes = header.ntotal * codeSize;
    const dataAt = this.pos;
    this.skip(bytes, `${fourcc} vector data`);
    const codes = this.options.arrays ? new Uint8Array(this.source.read(dataAt, bytes)) : undefined;
    return done({ fourcc, vectors: { codeSize, bytes, ...(sqType ? { sqType } : {}) }, codes });
  }

  private scalarQuantizer(
    header: Header,
    index: IndexFourcc,
    numericType?: number,
  ): { codeSize: number; sqType: 'fp16' | '8bit_direct_signed' } {
    const at = this.pos;
    const qtype = this.i32('IxSQ qtype');
    const sqType =
      qtype === SQ_QTYPE.fp16
        ? 'fp16'
        : qtype === SQ_QTYPE['8bit_direct_signed']
          ? '8bit_direct_signed'
          : undefined;
    if (!sqType)
      fail(
        'UNSUPPORTED',
        `IxSQ qtype ${qtype} at byte ${at} is neither ${SQ_QTYPE.fp16} (fp16) nor ${SQ_QTYPE['8bit_direct_signed']} (8bit_direct_signed)`,
      );
    if (index === 'IHc2' && (numericType === 1) !== (sqType === 'fp16')) {
      fail('BAD_FIELD', `IHc2 numeric_type ${numericType} does not match its ${sqType} storage`);
    }
    this.i32('IxSQ rangestat');
    this.f32('IxSQ rangestat_arg');
    const d = this.i64('IxSQ d');
    const codeSize = this.i64('IxSQ code_size');
    const expectedCode = sqType === 'fp16' ? 2 * header.d : header.d;
    if (d !== header.d || codeSize !== expectedCode) {
      fail(
        'BAD_FIELD',
        `IxSQ has d ${d} and code_size ${codeSize}; ${sqType} over d = ${header.d} needs code_size ${expectedCode}`,
      );
    }
    const trained = this.count('IxSQ trained');
    this.skip(4 * trained, 'IxSQ trained');
    return { codeSize, sqType };
  }

  private idMap(ntotal: number) {
    return this.section('id_map', () => {
      this.count('the id map', ntotal, `the index holds ntotal = ${ntotal} vectors`);
      const start = this.pos;
      this.skip(8 * ntotal, 'the id map');
      const ids = new Int32Array(ntotal);
      this.forWindows(start, ntotal, 8, (bytes, first) => {
        const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
        for (let k = 0; k < words.length / 2; k++) {
          const i = first + k;
          const lo = words[2 * k]!;
          if (words[2 * k + 1] !== 0 || lo < 0) {
            fail(
              'BAD_FIELD',
              `id_map[${i}] is not an int32 doc id >= 0 (high word ${words[2 * k + 1]}, low word ${lo})`,
            );
          }
          if (i > 0 && lo <= ids[i - 1]!) {
            fail('BAD_FIELD', `id_map must be strictly increasing: id_map[${i}] = ${lo} after ${ids[i - 1]}`);
          }
          ids[i] = lo;
        }
      });
      return {
        summary: { count: ntotal, first: ntotal ? ids[0]! : -1, last: ntotal ? ids[ntotal - 1]! : -1 },
        ids: this.options.arrays ? ids : undefined,
      };
    });
  }
}

function agree(outer: string, a: Header, inner: string, b: Header): void {
  if (a.d !== b.d || a.ntotal !== b.ntotal || a.metricType !== b.metricType) {
    fail(
      'COUNT_MISMATCH',
      `${outer} says d ${a.d}, ntotal ${a.ntotal}, metric ${a.metricType} but the ${inner} inside it says ` +
        `d ${b.d}, ntotal ${b.ntotal}, metric ${b.metricType}`,
    );
  }
}

function expectedStorages(index: IndexFourcc, metricType: number, numericType?: number): StorageFourcc[] {
  const flat: StorageFourcc = metricType === METRIC_INNER_PRODUCT ? 'IxFI' : 'IxF2';
  switch (index) {
    case 'IHNf':
    case 'IHNc':
      return [flat];
    case 'IHc2':
      return [numericType === 1 ? 'IxSQ' : flat];
    case 'IHNs':
      return ['IxSQ'];
    case 'IBHf':
    case 'IBHc':
      return ['IBxF'];
  }
}

function checkEntryPoint(
  index: IndexFourcc,
  graph: { summary: HnswSummary; entryLevel: number; topLevel: number },
  baseLevelOnly: boolean,
  ntotal: number,
): void {
  const { entryPoint, maxLevel } = graph.summary;
  if (entryPoint < -1 || entryPoint >= ntotal) {
    fail('BAD_FIELD', `hnsw entry_point ${entryPoint} is outside [-1, ${ntotal})`);
  }
  if (entryPoint === -1) {
    if (maxLevel !== -1) fail('BAD_FIELD', `hnsw has no entry point but max_level ${maxLevel} (expected -1)`);
    if (!(isCagraIndex(index) && baseLevelOnly)) {
      fail(
        'BAD_FIELD',
        `${index} has entry_point -1 without base_level_only: Faiss's search would return nothing`,
      );
    }
    return;
  }
  if (maxLevel !== graph.entryLevel - 1 || maxLevel !== graph.topLevel - 1) {
    fail(
      'BAD_FIELD',
      `hnsw max_level is ${maxLevel}, entry_point ${entryPoint} reaches level ${graph.entryLevel - 1} and the ` +
        `highest node level is ${graph.topLevel - 1}; all three must agree`,
    );
  }
}
