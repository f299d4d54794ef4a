// `.knnvec` blobs (k-NN's VectorValuesInputStream): `doc_count` vectors, no header, no padding. The storage layer hands
// them over as a HostBlob (half_float already converted to fp16 by halfFloatTransform); this module checks the
// size and the values and returns a VectorSet whose chunks are typed views over the blob's own memory.
import type { HostBlob, ReadOptions } from '../storage/types.js';
import { VectorDataError } from './errors.js';
import { FP16_MAX, halfFloatTransform } from './fp16.js';
import { findFloat32AtLeast, findNonFiniteFloat16, findNonFiniteFloat32 } from './scan.js';
import type { DataType, VectorArray, VectorSet } from './types.js';
import { DATA_TYPES, bytesPerVector, wireBytesPerVector } from './types.js';

/** What the build request says about the vectors. */
export interface VectorBlobSpec {
  readonly dataType: DataType;
  /** Elements per vector (bits for binary). */
  readonly dimension: number;
  readonly count: number;
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Throws VectorDataError unless the spec describes vectors Faiss can index. */
export function validateVectorSpec(spec: VectorBlobSpec): void {
  const { dataType, dimension, count } = spec;
  if (!DATA_TYPES.includes(dataType)) {
    throw new VectorDataError(
      'BAD_SPEC',
      `unknown data_type '${String(dataType)}' (one of ${DATA_TYPES.join(', ')})`,
    );
  }
  if (!Number.isSafeInteger(dimension) || dimension < 1) {
    throw new VectorDataError('BAD_SPEC', `dimension must be a positive integer, got ${dimension}`);
  }
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new VectorDataError('BAD_SPEC', `doc_count must be a non-negative integer, got ${count}`);
  }
  if (dataType === 'binary' && dimension % 8 !== 0) {
    const down = dimension - (dimension % 8);
    throw new VectorDataError(
      'BINARY_DIMENSION',
      `binary dimension is in bits and must be a multiple of 8 (whole bytes per vector), got ${dimension}; ` +
        `the nearest valid dimensions are ${down || 8} and ${down + 8}`,
    );
  }
}

/** Bytes of the `.knnvec` object in the repository (half_float travels as float32). */
export function wireVectorBytes(spec: VectorBlobSpec): number {
  return spec.count * wireBytesPerVector(spec.dataType, spec.dimension);
}

/** Bytes of the vectors in host memory (half_float as fp16). */
export function hostVectorBytes(spec: VectorBlobSpec): number {
  return spec.count * bytesPerVector(spec.dataType, spec.dimension);
}

/**
 * How to ask the storage layer for a `.knnvec` so parseVectorBlob can use it without copying: chunks of whole
 * vectors, fp16 conversion on the way, and the size checked (checkVectorObjectSize) before any byte is downloaded.
 */
export function knnvecReadOptions(
  spec: VectorBlobSpec,
): Pick<ReadOptions, 'alignBytes' | 'checkSize' | 'transform'> {
  validateVectorSpec(spec);
  return {
    alignBytes: bytesPerVector(spec.dataType, spec.dimension),
    checkSize: (bytes) => checkVectorObjectSize(spec, bytes),
    ...(spec.dataType === 'half_float' ? { transform: halfFloatTransform } : {}),
  };
}

/**
 * Throws VectorDataError unless an object of `objectBytes` bytes is the `.knnvec` the spec describes. The one
 * check of the .knnvec's size (the storage layer runs it before downloading, through knnvecReadOptions).
 */
export function checkVectorObjectSize(spec: VectorBlobSpec, objectBytes: number): void {
  validateVectorSpec(spec);
  const expected = wireVectorBytes(spec);
  if (objectBytes !== expected) {
    throw new VectorDataError('VECTOR_BYTES_MISMATCH', sizeMismatch(spec, objectBytes, expected, 'wire'));
  }
}

/**
 * Checks the blob against the spec and its values (no NaN/Inf in float data, fp16 in range) and returns the
 * vectors as typed views over the blob's chunks (copied only where a chunk is misaligned for the element type
 * or a vector straddles two chunks).
 */
export function parseVectorBlob(blob: HostBlob, spec: VectorBlobSpec): VectorSet {
  validateVectorSpec(spec);
  if (!HOST_LITTLE_ENDIAN) throw new Error('vector parsing assumes a little-endian host');
  const expected = hostVectorBytes(spec);
  if (blob.byteLength !== expected) {
    throw new VectorDataError('VECTOR_BYTES_MISMATCH', sizeMismatch(spec, blob.byteLength, expected, 'host'));
  }
  const vectorBytes = bytesPerVector(spec.dataType, spec.dimension);
  const elementBytes = ELEMENT_BYTES[spec.dataType];
  const pieces = wholeVectorPieces(blob.chunks, vectorBytes, elementBytes);
  const chunks = pieces.map((bytes) => typedView(spec.dataType, bytes));
  checkValues(spec, chunks);
  return { dataType: spec.dataType, dimension: spec.dimension, count: spec.count, chunks };
}

const ELEMENT_BYTES: Record<DataType, number> = { float: 4, half_float: 2, byte: 1, binary: 1 };

function typedView(dataType: DataType, bytes: Uint8Array): VectorArray {
  const { buffer, byteOffset, byteLength } = bytes;
  switch (dataType) {
    case 'float':
      return new Float32Array(buffer, byteOffset, byteLength / 4);
    case 'half_float':
      return new Uint16Array(buffer, byteOffset, byteLength / 2);
    case 'byte':
      return new Int8Array(buffer, byteOffset, byteLength);
    case 'binary':
      return bytes;
  }
}

/**
 * Splits the blob's chunks into runs of whole vectors. A run is a view of a chunk when it starts at an offset
 * aligned for the element type; a vector split across two chunks is copied into its own small run.
 */
export function wholeVectorPieces(
  chunks: readonly Uint8Array[],
  vectorBytes: number,
  elementBytes: number,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  let carry: Uint8Array | undefined;
  let carried = 0;
  for (const chunk of chunks) {
    let pos = 0;
    if (carry) {
      const take = Math.min(vectorBytes - carried, chunk.length);
      carry.set(chunk.subarray(0, take), carried);
      carried += take;
      pos = take;
      if (carried < vectorBytes) continue;
      out.push(carry);
      carry = undefined;
    }
    const whole = Math.floor((chunk.length - pos) / vectorBytes) * vectorBytes;
    if (whole > 0) {
      const run = chunk.subarray(pos, pos + whole);
      out.push(run.byteOffset % elementBytes === 0 ? run : new Uint8Array(run)); // a copy, also for Buffers
      pos += whole;
    }
    if (pos < chunk.length) {
      carry = new Uint8Array(vectorBytes);
      carry.set(chunk.subarray(pos));
      carried = chunk.length - pos;
    }
  }
  if (carry) throw new RangeError(`blob ends inside a vector (${carried} of ${vectorBytes} bytes)`);
  return out;
}

/**
 * Float32 distances overflow to infinity (and the graph comes out garbage) once a squared norm passes a quarter of
 * float32's largest value: ||x - y||^2 and |x . y| stay below 4 max(||x||^2, ||y||^2).
 */
const MAX_SQUARED_NORM = 3.4028234663852886e38 / 4;
/** No row whose elements are all below 2^56 can reach it (16,000 x 2^112 < MAX_SQUARED_NORM): 127 + 56. */
const LARGE_EXPONENT = 183;

function checkValues(spec: VectorBlobSpec, chunks: readonly VectorArray[]): void {
  if (spec.dataType !== 'float' && spec.dataType !== 'half_float') return;
  let firstVector = 0;
  for (const chunk of chunks) {
    if (spec.dataType === 'float') checkFloatChunk(spec, chunk as Float32Array, firstVector);
    else {
      const bad = findNonFiniteFloat16(chunk as Uint16Array);
      if (bad >= 0) throw nonFiniteError(spec, chunk, bad, firstVector);
    }
    firstVector += chunk.length / spec.dimension;
  }
}

/** One pass over the exponent bits; only rows holding a huge (or non-finite) element get their norm computed. */
function checkFloatChunk(spec: VectorBlobSpec, chunk: Float32Array, firstVector: number): void {
  const d = spec.dimension;
  for (let at = findFloat32AtLeast(chunk, 0, LARGE_EXPONENT); at >= 0;) {
    const row = Math.floor(at / d);
    const nonFinite = findNonFiniteFloat32(chunk.subarray(row * d, (row + 1) * d));
    if (nonFinite >= 0) throw nonFiniteError(spec, chunk, row * d + nonFinite, firstVector);
    let squaredNorm = 0;
    for (let i = row * d; i < (row + 1) * d; i++) squaredNorm += chunk[i]! * chunk[i]!;
    if (squaredNorm > MAX_SQUARED_NORM) {
      throw new VectorDataError(
        'VALUE_TOO_LARGE',
        `float data is too large: vector ${firstVector + row} (0-based, doc order) has a squared norm of ` +
          `${squaredNorm.toExponential(3)}, over ${MAX_SQUARED_NORM.toExponential(3)} (a quarter of float32's ` +
          'largest value), so distances to it overflow to infinity; scale the vectors down',
      );
    }
    at = findFloat32AtLeast(chunk, (row + 1) * d, LARGE_EXPONENT);
  }
}

function nonFiniteError(
  spec: VectorBlobSpec,
  chunk: VectorArray,
  at: number,
  firstVector: number,
): VectorDataError {
  const vector = firstVector + Math.floor(at / spec.dimension);
  const element = at % spec.dimension;
  const where = `vector ${vector} (0-based, doc order) element ${element}`;
  if (spec.dataType === 'float') {
    const value = (chunk as Float32Array)[at]!;
    return new VectorDataError('NON_FINITE_VALUE', `float data must be finite: ${where} is ${value}`);
  }
  const bits = (chunk as Uint16Array)[at]!;
  if (bits & 0x3ff) {
    return new VectorDataError('NON_FINITE_VALUE', `half_float data must be finite: ${where} is NaN`);
  }
  const sign = bits & 0x8000 ? '-' : '+';
  return new VectorDataError(
    'HALF_FLOAT_OUT_OF_RANGE',
    `half_float data must fit fp16: ${where} became ${sign}Infinity, so its float32 value was ${sign}Infinity ` +
      `or at least 65520 in magnitude (fp16's largest finite value is ${FP16_MAX})`,
  );
}

function sizeMismatch(spec: VectorBlobSpec, actual: number, expected: number, form: 'wire' | 'host'): string {
  const { dataType, dimension, count } = spec;
  const elementBytes = form === 'wire' && dataType === 'half_float' ? 4 : ELEMENT_BYTES[dataType];
  const bitsPerUnit = dataType === 'binary' ? 8 : 1; // binary dimension counts bits
  const vectorBytes = (dimension / bitsPerUnit) * elementBytes;
  const unit = dataType === 'binary' ? 'bits' : `${elementBytes}-byte elements`;
  const lines = [
    `.knnvec holds ${actual} bytes, but doc_count ${count} × dimension ${dimension} (${dataType}, ${unit}) ` +
      `needs ${expected} bytes${form === 'host' && dataType === 'half_float' ? ' of fp16' : ''}`,
  ];
  if (form === 'host' && dataType === 'half_float' && actual === wireVectorBytes(spec)) {
    lines.push(
      'it still holds the float32 wire form: read it with knnvecReadOptions() so it arrives as fp16',
    );
  }
  if (count > 0 && actual % (count * elementBytes) === 0) {
    lines.push(`dimension ${(actual / (count * elementBytes)) * bitsPerUnit} would fit doc_count ${count}`);
  }
  if (actual % vectorBytes === 0) {
    lines.push(`doc_count ${actual / vectorBytes} would fit dimension ${dimension}`);
  } else {
    lines.push(
      `it is not a whole number of ${vectorBytes}-byte vectors (${actual % vectorBytes} bytes left over)`,
    );
  }
  return lines.join('; ');
}
