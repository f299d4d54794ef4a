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

/** Bytes one vector takes in a `.knnvec` blob (half_float travels as fp32). */
export function wireBytesPerVector(dataType: DataType, dimension: number): number {
  return dataType === 'half_float' ? 4 * dimension : bytesPerVector(dataType, dimension);
}
