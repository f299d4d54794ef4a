// Little-endian field encoding for the small fixed parts of a Faiss file (fourccs, headers, counts). The large
// arrays never pass through here: the writer yields views over them.

export class FieldWriter {
  private readonly parts: number[] = [];
  private readonly view = new DataView(new ArrayBuffer(8));

  fourcc(code: string): this {
    if (code.length !== 4) throw new RangeError(`fourcc must be 4 ASCII characters, got '${code}'`);
    for (let i = 0; i < 4; i++) this.parts.push(code.charCodeAt(i) & 0xff);
    return this;
  }

  u8(value: number): this {
    this.parts.push(value & 0xff);
    return this;
  }

  i32(value: number): this {
    this.view.setInt32(0, value, true);
    return this.copy(4);
  }

  f32(value: number): this {
    this.view.setFloat32(0, value, true);
    return this.copy(4);
  }

  f64(value: number): this {
    this.view.setFloat64(0, value, true);
    return this.copy(8);
  }

  /** A 64-bit integer (int64 or uint64) from a safe JS integer. */
  i64(value: number): this {
    if (!Number.isSafeInteger(value))
      throw new RangeError(`64-bit field value ${value} is not a safe integer`);
    this.view.setBigInt64(0, BigInt(value), true);
    return this.copy(8);
  }

  get length(): number {
    return this.parts.length;
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }

  private copy(n: number): this {
    for (let i = 0; i < n; i++) this.parts.push(this.view.getUint8(i));
    return this;
  }
}

/** A printable form of 4 raw bytes for error messages. */
export function printableFourcc(bytes: Uint8Array): string {
  return Array.from(bytes, (b) =>
    b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`,
  ).join('');
}
