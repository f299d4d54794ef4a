// Which Faiss layout each (data_type, builder) pair emits, as data. The choice is a service setting: the default
// `compatible` policy emits only layouts that every k-NN with the remote build client loads (k-NN 2.19+, Faiss
// 1.9+); `reference` reproduces the reference Python builder; `modern` uses the CAGRA layouts Faiss 1.12+ added
// (k-NN 3.2+). README.md explains each fourcc and the versions that read it.
import type { DataType } from '../vectors/types.js';
import { DATA_TYPES } from '../vectors/types.js';
import { FaissFormatError } from './errors.js';
import type { FaissFormat, IndexFourcc } from './formats.js';
import { STORAGE_FOR, checkFormat, needsHierarchicalGraph } from './formats.js';

/** Who built the graph: the CPU builder (Faiss HNSW, hierarchical) or the GPU builder (CAGRA, base level only). */
export type GraphSource = 'cpu' | 'gpu';

export type FormatPolicy = Readonly<Record<DataType, Readonly<Record<GraphSource, IndexFourcc>>>>;

export const FORMAT_POLICIES = {
  /** Loads in k-NN 2.19+ (Faiss 1.9+): no IHc2/IBHc, which Faiss only reads from 1.12 on. */
  compatible: {
    float: { cpu: 'IHNf', gpu: 'IHNc' },
    half_float: { cpu: 'IHNs', gpu: 'IHNs' },
    byte: { cpu: 'IHNs', gpu: 'IHNs' },
    binary: { cpu: 'IBHf', gpu: 'IBHf' },
  },
  /** What the reference builder emits, whatever built the graph; needs k-NN 3.2+ (Faiss 1.12+) for IHc2/IBHc. */
  reference: {
    float: { cpu: 'IHNc', gpu: 'IHNc' },
    half_float: { cpu: 'IHc2', gpu: 'IHc2' },
    byte: { cpu: 'IHNs', gpu: 'IHNs' },
    binary: { cpu: 'IBHc', gpu: 'IBHc' },
  },
  /** Hierarchical layouts for CPU graphs, CAGRA layouts for GPU graphs; needs k-NN 3.2+ (Faiss 1.12+). */
  modern: {
    float: { cpu: 'IHNf', gpu: 'IHNc' },
    half_float: { cpu: 'IHNs', gpu: 'IHc2' },
    byte: { cpu: 'IHNs', gpu: 'IHNs' },
    binary: { cpu: 'IBHf', gpu: 'IBHc' },
  },
} as const satisfies Record<string, FormatPolicy>;

export type FormatPolicyName = keyof typeof FORMAT_POLICIES;
export const DEFAULT_FORMAT_POLICY: FormatPolicyName = 'compatible';
export const FORMAT_POLICY_NAMES = Object.keys(FORMAT_POLICIES) as FormatPolicyName[];

/** The policy a setting names; throws with the valid names otherwise. */
export function formatPolicy(name: string = DEFAULT_FORMAT_POLICY): FormatPolicy {
  if (!(FORMAT_POLICY_NAMES as string[]).includes(name)) {
    throw new FaissFormatError(
      'UNSUPPORTED',
      `unknown Faiss format policy '${name}' (one of ${FORMAT_POLICY_NAMES.join(', ')})`,
    );
  }
  return FORMAT_POLICIES[name as FormatPolicyName];
}

export interface FormatChoice {
  readonly dataType: DataType;
  readonly builder: GraphSource;
  /** The request's skip_stored_vectors: write Faiss's null storage instead of the vectors. */
  readonly skipStoredVectors?: boolean;
}

/** The full layout (index and storage) for one job, and whether the graph must have an entry point. */
export interface ChosenFormat extends FaissFormat {
  readonly needsHierarchicalGraph: boolean;
}

export function chooseFormat(
  choice: FormatChoice,
  policy: FormatPolicy = FORMAT_POLICIES[DEFAULT_FORMAT_POLICY],
): ChosenFormat {
  const { dataType, builder } = choice;
  const index = policy[dataType]?.[builder];
  if (!index) {
    throw new FaissFormatError(
      'UNSUPPORTED',
      `the format policy has no entry for ${dataType} graphs from the ${builder} builder`,
    );
  }
  const format: FaissFormat = choice.skipStoredVectors
    ? graphOnlyFormat(dataType)
    : { index, storage: STORAGE_FOR[dataType] };
  checkFormat(format, dataType, dataType === 'binary' ? 'hamming' : 'l2');
  return { ...format, needsHierarchicalGraph: needsHierarchicalGraph(format.index) };
}

/** Checks every entry of a policy (e.g. one read from configuration) against the layouts we can write. */
export function checkFormatPolicy(policy: FormatPolicy): void {
  for (const dataType of DATA_TYPES) {
    for (const builder of ['cpu', 'gpu'] as const) chooseFormat({ dataType, builder }, policy);
  }
}

/**
 * skip_stored_vectors, whatever the policy and builder: a CAGRA layout over Faiss's null storage. k-NN's Java
 * reader wires Lucene's own vectors into a null storage only under IndexHNSWCagra (IHNc/IHc2) and binary HNSW
 * (FaissFlatIndexFactory); an IHNf or IHNs over null storage keeps an empty placeholder that throws on every
 * search. IHNc (not IHc2) because k-NN 3.7+, the first to send the flag, reads it and its numeric_type is moot
 * without storage. Binary gets IBHc, as the reference builder writes it.
 */
export function graphOnlyFormat(dataType: DataType): FaissFormat {
  return dataType === 'binary' ? { index: 'IBHc', storage: 'none' } : { index: 'IHNc', storage: 'none' };
}
