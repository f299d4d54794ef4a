// One error type for Faiss files: bad writer input (caught before the first byte is emitted) and files our reader
// rejects. Messages name the section, the offset and the numbers involved.

export type FaissFormatErrorCode =
  | 'BAD_INPUT'
  | 'UNSUPPORTED'
  | 'TRUNCATED'
  | 'BAD_FOURCC'
  | 'BAD_FIELD'
  | 'COUNT_MISMATCH'
  | 'NEIGHBOR_OUT_OF_RANGE';

export class FaissFormatError extends Error {
  override readonly name = 'FaissFormatError';

  constructor(
    readonly code: FaissFormatErrorCode,
    message: string,
  ) {
    super(message);
  }
}
