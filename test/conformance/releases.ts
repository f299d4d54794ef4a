// Which k-NN releases send which build request, which of k-NN's Faiss builds stands for each, and which layouts
// each of those Faiss builds can load: the expectations the conformance suite checks the service against.
// Facts read from opensearch-project/k-NN (tags 3.0.0.0 to 3.8.0.0 and main):
// * 3.0-3.1 build remotely only float fields with the flat encoder (FaissHNSWMethod SUPPORTED_REMOTE_INDEX_DATA_TYPES).
// * 3.2+ also send half_float (fp16 SQ), byte and binary (binary fields and on_disk/BQ fields, the latter with
//   their field's l2 or innerproduct space type).
// * 3.7+ send skip_stored_vectors: true for SQ 1-bit fields (as data_type float); main also for half_float.
// * k-NN 3.0-3.1 vendor Faiss 0cbc2a88 (1.9+), 3.2-3.8 Faiss 5616caad (1.11+); 3.6+ add patch 0009 (radial search
//   on base-level-only CAGRA). Faiss before 1.11 reads neither IHc2 nor IBHc; read_index_binary has no null storage.
import type { IndexFourcc, StorageKind } from '../../src/faiss-format/formats.js';
import type { DataType } from '../../src/vectors/types.js';
import type { CheckerRelease } from '../helpers/knn-checker.js';

export interface ReleaseGroup {
  /** The k-NN releases, in words. */
  readonly releases: string;
  readonly checker: CheckerRelease;
}

/** The k-NN releases that can send a (data type, skip_stored_vectors) request, grouped by their Faiss build. */
export function releasesSending(dataType: DataType, skip: boolean): ReleaseGroup[] {
  if (skip) {
    if (dataType === 'float') return [{ releases: '3.7+', checker: '3.8' }];
    if (dataType === 'half_float') return [{ releases: 'main (after 3.8)', checker: '3.8' }];
    return [];
  }
  const modern: ReleaseGroup[] = [
    { releases: '3.2-3.5', checker: '3.5' },
    { releases: '3.6+', checker: '3.8' },
  ];
  return dataType === 'float' ? [{ releases: '3.0-3.1', checker: '3.1' }, ...modern] : modern;
}

/** Whether k-NN's Faiss of this checker loads a file of this layout. */
export function checkerLoads(checker: CheckerRelease, index: IndexFourcc, storage: StorageKind): boolean {
  if (storage === 'none' && (index === 'IBHc' || index === 'IBHf')) return false;
  if (checker === '3.1') return index !== 'IHc2' && index !== 'IBHc';
  return true;
}
