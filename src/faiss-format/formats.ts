// The Faiss index layouts we emit: which fourccs exist, which storage goes with which graph index, and which
// graph shape each one needs. See README.md for which k-NN / Faiss versions load each of them.
import type { DataType, SpaceType } from '../vectors/types.js';
import { FaissFormatError } from './errors.js';

/** The HNSW index inside the id map. */
export const INDEX_FOURCCS = ['IHNf', 'IHNc', 'IHc2', 'IHNs', 'IBHf', 'IBHc'] as const;
export type IndexFourcc = (typeof INDEX_FOURCCS)[number];

/** The top-level id map: IndexIDMap for float indexes, IndexBinaryIDMap for binary ones. */
export type IdMapFourcc = 'IxMp' | 'IBMp';

/** Storage fourccs; `null` is Faiss's marker for an absent storage (skip_stored_vectors). */
export type StorageFourcc = 'IxF2' | 'IxFI' | 'IxSQ' | 'IBxF' | 'null';

/**
 * How the vectors are stored: `flat` float32 (IxF2 for L2, IxFI for inner product), `sq-fp16` and `sq-int8`
 * (IxSQ with QT_fp16 / QT_8bit_direct_signed), `binary-flat` (IBxF), or `none` (Faiss's null storage).
 */
export type StorageKind = 'flat' | 'sq-fp16' | 'sq-int8' | 'binary-flat' | 'none';

export interface FaissFormat {
  readonly index: IndexFourcc;
  readonly storage: StorageKind;
}

/** Faiss ScalarQuantizer::QuantizerType values we write. */
export const SQ_QTYPE = { fp16: 4, '8bit_direct_signed': 8 } as const;

/** IndexHNSWCagra::numeric_type_ (Faiss NumericType) for IHc2. */
export const CAGRA_NUMERIC_TYPE = { float32: 0, float16: 1 } as const;

/** Faiss MetricType values in index headers. */
export const METRIC_INNER_PRODUCT = 0;
export const METRIC_L2 = 1;

/** Storage kinds each index fourcc may hold. */
const STORAGES_OF: Record<IndexFourcc, readonly StorageKind[]> = {
  IHNf: ['flat', 'none'],
  IHNc: ['flat', 'none'],
  IHc2: ['flat', 'sq-fp16', 'none'],
  IHNs: ['sq-fp16', 'sq-int8', 'none'],
  IBHf: ['binary-flat', 'none'],
  IBHc: ['binary-flat', 'none'],
};

/** Index fourccs that can hold each data type. */
const INDEXES_FOR: Record<DataType, readonly IndexFourcc[]> = {
  float: ['IHNf', 'IHNc', 'IHc2'],
  half_float: ['IHNs', 'IHc2'],
  byte: ['IHNs'],
  binary: ['IBHf', 'IBHc'],
};

/** The storage that holds a data type's vectors (when they are stored). */
export const STORAGE_FOR: Record<DataType, StorageKind> = {
  float: 'flat',
  half_float: 'sq-fp16',
  byte: 'sq-int8',
  binary: 'binary-flat',
};

export function isBinaryIndex(index: IndexFourcc): boolean {
  return index === 'IBHf' || index === 'IBHc';
}

/** CAGRA layouts carry base_level_only / num_base_level_search_entrypoints and search from random nodes. */
export function isCagraIndex(index: IndexFourcc): boolean {
  return index === 'IHNc' || index === 'IHc2' || index === 'IBHc';
}

/**
 * IHNf, IHNs and IBHf search from the file's entry point down through the upper levels, so they need a graph with
 * a real entry point (a hierarchical HNSW; a base level with a chosen entry point and max_level 0 also works).
 * The CAGRA layouts (IHNc, IHc2, IBHc) accept a base-level-only graph: every node on level 1 and
 * entry_point = max_level = -1.
 */
export function needsHierarchicalGraph(index: IndexFourcc): boolean {
  return !isCagraIndex(index);
}

export function idMapFourcc(index: IndexFourcc): IdMapFourcc {
  return isBinaryIndex(index) ? 'IBMp' : 'IxMp';
}

export function storageFourcc(storage: StorageKind, spaceType: SpaceType): StorageFourcc {
  switch (storage) {
    case 'flat':
      return spaceType === 'innerproduct' ? 'IxFI' : 'IxF2';
    case 'sq-fp16':
    case 'sq-int8':
      return 'IxSQ';
    case 'binary-flat':
      return 'IBxF';
    case 'none':
      return 'null';
  }
}

/** The header metric_type. Binary indexes keep Faiss's default (L2 = 1) and always search by Hamming distance. */
export function metricType(spaceType: SpaceType): number {
  return spaceType === 'innerproduct' ? METRIC_INNER_PRODUCT : METRIC_L2;
}

/** Throws FaissFormatError unless the format can hold this data type under this space type. */
export function checkFormat(format: FaissFormat, dataType: DataType, spaceType: SpaceType): void {
  const { index, storage } = format;
  if (!INDEX_FOURCCS.includes(index)) {
    throw new FaissFormatError(
      'UNSUPPORTED',
      `unknown index fourcc '${String(index)}' (${INDEX_FOURCCS.join(', ')})`,
    );
  }
  // Without storage the graph alone is written: IHNc/IHc2 fit any non-binary type (k-NN supplies the vectors).
  const graphOnly = storage === 'none' && dataType !== 'binary' && (index === 'IHNc' || index === 'IHc2');
  if (!graphOnly && !INDEXES_FOR[dataType].includes(index)) {
    throw new FaissFormatError(
      'UNSUPPORTED',
      `${dataType} vectors go into ${INDEXES_FOR[dataType].join(' or ')}, not ${index}`,
    );
  }
  if (!STORAGES_OF[index].includes(storage)) {
    throw new FaissFormatError(
      'UNSUPPORTED',
      `${index} cannot hold '${storage}' storage (it holds ${STORAGES_OF[index].join(', ')})`,
    );
  }
  if (storage !== 'none' && storage !== STORAGE_FOR[dataType]) {
    throw new FaissFormatError(
      'UNSUPPORTED',
      `${dataType} vectors are stored as '${STORAGE_FOR[dataType]}', not '${storage}'`,
    );
  }
  const binary = dataType === 'binary';
  if (binary !== (spaceType === 'hamming')) {
    throw new FaissFormatError(
      'UNSUPPORTED',
      `space_type ${spaceType} does not apply to ${dataType} vectors (binary uses hamming; the others l2 or innerproduct)`,
    );
  }
}
