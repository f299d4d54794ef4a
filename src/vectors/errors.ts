// The one error type for bad vector or doc-id data: the job fails with its message, which names the problem and
// the numbers a person needs to fix the upload (or the request that described it).

export type VectorDataErrorCode =
  | 'BAD_SPEC'
  | 'VECTOR_BYTES_MISMATCH'
  | 'NON_FINITE_VALUE'
  | 'VALUE_TOO_LARGE'
  | 'HALF_FLOAT_OUT_OF_RANGE'
  | 'BINARY_DIMENSION'
  | 'DOC_ID_BYTES_MISMATCH'
  | 'DOC_ID_COUNT_MISMATCH'
  | 'DOC_IDS_NOT_INCREASING'
  | 'NEGATIVE_DOC_ID';

export class VectorDataError extends Error {
  override readonly name = 'VectorDataError';

  constructor(
    readonly code: VectorDataErrorCode,
    message: string,
  ) {
    super(message);
  }
}
