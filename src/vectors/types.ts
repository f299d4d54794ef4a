// Domain types for vector data as k-NN sends it and as the builders and the writer consume it.

export const DATA_TYPES = ['float', 'half_float', 'byte', 'binary'] as const;
export type DataType = (typeof DATA_TYPES)[number];

export const SPACE_TYPES = ['l2', 'innerproduct', 'hamming'] as const;
export type SpaceType = (typeof SPACE_TYPES)[number];

/**
 * Vectors in host memory, in the element type the index stores:
 * float -> Float32Array, half_float -> Uint16Array (IEEE fp16 bits), byte -> Int8Array,
 * binary -> Uint8Array (packed bits, dimension / 8 bytes per vector).
 */
export type VectorArray = Float32Array | Uint16Array | Int8Array | Uint8Array;

/**
 * A segment's vectors, in doc-id order. Held as chunks so that sets over Node 20's 4 GiB typed-array limit
 * work; every chunk holds whole vectors, and the chunks in order are the vectors in order.
 */
export interface VectorSet {
  readonly dataType: DataType;
  /** Elements per vector (bits for binary). */
  readonly dimension: number;
  readonly count: number;
  readonly chunks: readonly VectorArray[];
}

/** What a set of vectors is without its values (enough to plan a build's file before the vectors arrive). */
export type VectorShape = Pick<VectorSet, 'dataType' | 'dimension' | 'count'>;

/** Bytes one vector takes in host memory (half_float is stored as fp16). */
export function bytesPerVector(dataType: DataType, dimension: number): number {
  switch (dataType) {
    case 'float':
      return 4 * dimension;
    case 'half_float':
      return 2 * dimension;
    case 'byte':
      return dimension;
    case 'binary':
      return dimension / 8;
  }
}

const ARRAY_TYPE: Record<DataType, { name: string; is: (a: VectorArray) => boolean }> = {
  float: { name: 'Float32Array', is: (a) => a instanceof Float32Array },
  half_float: { name: 'Uint16Array (fp16 bits)', is: (a) => a instanceof Uint16Array },
  byte: { name: 'Int8Array', is: (a) => a instanceof Int8Array },
  binary: { name: 'Uint8Array (packed bits)', is: (a) => a instanceof Uint8Array },
};

/**
 * Why `v` is not a well-formed VectorSet, or null: a positive dimension (binary: a multiple of 8 bits) and, unless
 * `chunks` is false, chunks of the data type's array holding whole vectors that add up to `count`. The one
 * definition of the shape: the builders and the Faiss writer, which take VectorSets from any caller, check it here.
 */
export function vectorSetProblem(v: VectorSet, chunks = true): string | null {
  const { dataType, dimension, count } = v;
  if (!Number.isSafeInteger(dimension) || dimension < 1) {
    return `dimension must be a positive integer, got ${dimension}`;
  }
  if (dataType === 'binary' && dimension % 8 !== 0) {
    return `binary dimension must be a multiple of 8 bits, got ${dimension}`;
  }
  if (!chunks) return null;
  const perVector = dataType === 'binary' ? dimension / 8 : dimension;
  const type = ARRAY_TYPE[dataType];
  let total = 0;
  for (const [i, chunk] of v.chunks.entries()) {
    if (!type.is(chunk))
      return `${dataType} vectors come as ${type.name}; chunk ${i} is a ${chunk.constructor.name}`;
    if (chunk.length % perVector !== 0)
      return `chunk ${i} does not hold whole vectors of dimension ${dimension}`;
    total += chunk.length / perVector;
  }
  return total === count ? null : `the chunks hold ${total} vectors, the set says ${count}`;
}

/** Bytes one vector takes in a `.knnvec` blob (half_float travels as fp32). */
export function wireBytesPerVector(dataType: DataType, dimension: number): number {
  return dataType === 'half_float' ? 4 * dimension : bytesPerVector(dataType, dimension);
}
