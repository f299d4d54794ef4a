// The vectors library's public surface: `.knnvec` / `.knndid` parsing, fp16 conversion, the domain types.
export * from './types.js';
export { VectorDataError } from './errors.js';
export type { VectorDataErrorCode } from './errors.js';
export {
  FP16_MAX,
  float16BitsToFloat32,
  float16ToFloat32,
  float32BitsToFloat16Bits,
  float32ToFloat16,
  halfFloatTransform,
} from './fp16.js';
export {
  checkVectorObjectSize,
  hostVectorBytes,
  knnvecReadOptions,
  parseVectorBlob,
  validateVectorSpec,
  wireVectorBytes,
} from './knnvec.js';
export type { VectorBlobSpec } from './knnvec.js';
export { checkDocIdObjectSize, checkDocIds, parseDocIdBlob } from './knndid.js';
export { findNonFiniteFloat16, findNonFiniteFloat32 } from './scan.js';
