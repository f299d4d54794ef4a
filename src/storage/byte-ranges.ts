// Byte ranges over an object held as consecutive chunks (HostBlob.chunks), without copying.

/** Byte views of [from, to) over consecutive chunks. */
export function* slices(chunks: readonly Uint8Array[], from: number, to: number): Generator<Uint8Array> {
  let base = 0;
  for (const chunk of chunks) {
    const end = base + chunk.byteLength;
    if (end > from && base < to) {
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      yield bytes.subarray(Math.max(0, from - base), Math.min(chunk.byteLength, to - base));
    }
    base = end;
    if (base >= to) return;
  }
}

/** The pieces of each iterable in turn. */
export function* chain(...parts: Iterable<Uint8Array>[]): Generator<Uint8Array> {
  for (const part of parts) yield* part;
}
