// The faiss-format library's public surface: choose a layout, write it, read it back.
export { FaissFormatError } from './errors.js';
export type { FaissFormatErrorCode } from './errors.js';
export type { HnswGraph } from './hnsw-graph.js';
export {
  INDEX_FOURCCS,
  idMapFourcc,
  isBinaryIndex,
  isCagraIndex,
  needsHierarchicalGraph,
  storageFourcc,
} from './formats.js';
export type { FaissFormat, IdMapFourcc, IndexFourcc, StorageFourcc, StorageKind } from './formats.js';
export { defaultAssignProbas, defaultCumNeighborPerLevel } from './hnsw-defaults.js';
export {
  DEFAULT_FORMAT_POLICY,
  FORMAT_POLICIES,
  FORMAT_POLICY_NAMES,
  checkFormatPolicy,
  chooseFormat,
  formatPolicy,
} from './policy.js';
export type { ChosenFormat, FormatChoice, FormatPolicy, FormatPolicyName, GraphSource } from './policy.js';
export { DEFAULT_BASE_LEVEL_SEARCH_ENTRYPOINTS, validateFaissIndexInput } from './validate.js';
export type { FaissIndexInput } from './validate.js';
export {
  faissIndexChunks,
  faissIndexReadable,
  faissIndexSections,
  faissIndexSize,
  writeFaissIndex,
} from './writer.js';
export type { FaissWriterOptions, WriteFaissIndexOptions } from './writer.js';
export { readFaissIndex, readFaissIndexFile } from './reader.js';
export type { FaissIndexSummary, FaissReadOptions, FaissSection, HnswSummary } from './reader.js';
export { fileSource, memorySource } from './byte-source.js';
export type { ByteSource } from './byte-source.js';
