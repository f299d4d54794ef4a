// Chunked host memory for one object, and the sink that writes a byte range of the object into it as the bytes
// arrive (optionally transformed, e.g. fp32 -> fp16), so a download needs no second full-size copy.
import { crc32 } from './crc32.js';
import { StorageError } from './errors.js';
import type { HostBlob, ObjectLocation, PartTransform } from './types.js';

/** How an object of `inputBytes` lands in memory. */
export interface BlobLayout {
  readonly inputBytes: number;
  readonly outputBytes: number;
  /** Output bytes per chunk; every chunk but the last has exactly this length. */
  readonly chunkBytes: number;
  readonly inputUnit: number;
  readonly outputUnit: number;
  readonly transform: PartTransform | undefined;
}

export interface LayoutOptions {
  readonly alignBytes?: number | undefined;
  readonly transform?: PartTransform | undefined;
  readonly maxChunkBytes: number;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
}

/**
 * Plans chunks for an object: chunk lengths are multiples of both alignBytes (records never straddle chunks)
 * and the transform's output unit. Throws SizeMismatch when the object is not a whole number of records/units.
 */
export function planLayout(
  inputBytes: number,
  options: LayoutOptions,
  where: { location: ObjectLocation; address: string },
): BlobLayout {
  const alignBytes = options.alignBytes ?? 1;
  const inputUnit = options.transform?.inputUnit ?? 1;
  const outputUnit = options.transform?.outputUnit ?? 1;
  checkPositiveInteger('alignBytes', alignBytes);
  checkPositiveInteger('transform.inputUnit', inputUnit);
  checkPositiveInteger('transform.outputUnit', outputUnit);
  if (inputBytes % inputUnit !== 0) {
    throw new StorageError(
      'SizeMismatch',
      `${where.address} has ${inputBytes} bytes, not a whole number of ${inputUnit}-byte values`,
      { location: where.location },
    );
  }
  const outputBytes = (inputBytes / inputUnit) * outputUnit;
  if (outputBytes % alignBytes !== 0) {
    throw new StorageError(
      'SizeMismatch',
      `${where.address} has ${inputBytes} bytes, not a whole number of records (${alignBytes} bytes each in memory)`,
      { location: where.location },
    );
  }
  const unit = (alignBytes / gcd(alignBytes, outputUnit)) * outputUnit;
  const chunkBytes = Math.floor(options.maxChunkBytes / unit) * unit;
  if (chunkBytes === 0) {
    throw new RangeError(
      `a record of ${unit} bytes does not fit the largest chunk (${options.maxChunkBytes} bytes)`,
    );
  }
  return { inputBytes, outputBytes, chunkBytes, inputUnit, outputUnit, transform: options.transform };
}

/** Allocates the chunks of a layout. Pages are only touched as bytes land, so allocation itself is cheap. */
export function allocateBlob(layout: BlobLayout): HostBlob {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < layout.outputBytes; offset += layout.chunkBytes) {
    chunks.push(new Uint8Array(Math.min(layout.chunkBytes, layout.outputBytes - offset)));
  }
  return { byteLength: layout.outputBytes, chunks };
}

/** Byte ranges [start, end) of the input, each a multiple of `unit` long (except none: the total is too). */
export function planParts(
  totalBytes: number,
  partBytes: number,
  unit: number,
): { start: number; end: number }[] {
  const size = Math.max(unit, partBytes - (partBytes % unit));
  const parts = [];
  for (let start = 0; start < totalBytes; start += size)
    parts.push({ start, end: Math.min(totalBytes, start + size) });
  return parts;
}

/** Thrown when a source sends more bytes than its range holds: the part is not accepted. */
export class PartOverrunError extends Error {
  override readonly name = 'PartOverrunError';
}

/**
 * Receives the bytes of input range [start, end) in order, possibly over several attempts, and writes them into
 * the blob's chunks at their place. Only whole input units are written; a partial unit waits in `carry` for the
 * rest. After a failed attempt, `restart()` drops the partial unit and `resumeAt` says where to continue.
 */
export class PartSink {
  private committed = 0;
  private readonly carry: Uint8Array;
  private carryLength = 0;
  private crcValue = 0;

  constructor(
    private readonly layout: BlobLayout,
    private readonly chunks: readonly Uint8Array[],
    readonly start: number,
    readonly end: number,
    private readonly trackCrc = false,
  ) {
    this.carry = new Uint8Array(layout.inputUnit);
  }

  /** Input offset the next attempt starts at. */
  get resumeAt(): number {
    return this.start + this.committed;
  }

  get complete(): boolean {
    return this.start + this.committed === this.end;
  }

  /** Input bytes accepted so far (including a partial unit). */
  get received(): number {
    return this.committed + this.carryLength;
  }

  /** CRC32 of the input bytes written so far (when tracking was asked for). */
  get crc(): number {
    return this.crcValue;
  }

  restart(): void {
    this.carryLength = 0;
  }

  write(data: Uint8Array): void {
    const room = this.end - this.start - this.received;
    if (data.length > room) {
      throw new PartOverrunError(`range ${this.start}-${this.end - 1} received more bytes than it holds`);
    }
    const unit = this.layout.inputUnit;
    if (this.carryLength > 0) {
      const take = Math.min(unit - this.carryLength, data.length);
      this.carry.set(data.subarray(0, take), this.carryLength);
      this.carryLength += take;
      data = data.subarray(take);
      if (this.carryLength < unit) return;
      this.commit(this.carry);
      this.carryLength = 0;
    }
    const whole = data.length - (data.length % unit);
    if (whole > 0) this.commit(data.subarray(0, whole));
    if (whole < data.length) {
      this.carry.set(data.subarray(whole));
      this.carryLength = data.length - whole;
    }
  }

  /** Writes whole units at the current position, split where the output crosses into the next chunk. */
  private commit(input: Uint8Array): void {
    const { inputUnit, outputUnit, chunkBytes, transform } = this.layout;
    let done = 0;
    while (done < input.length) {
      const outPos = ((this.start + this.committed) / inputUnit) * outputUnit;
      const index = Math.floor(outPos / chunkBytes);
      const within = outPos - index * chunkBytes;
      const chunk = this.chunks[index]!;
      const take = Math.min(input.length - done, ((chunk.length - within) / outputUnit) * inputUnit);
      const source = input.subarray(done, done + take);
      if (transform) {
        // A plain Uint8Array view, not the socket's Buffer: Buffer#slice does not copy, which surprises transforms.
        const plain = new Uint8Array(source.buffer, source.byteOffset, source.length);
        transform.apply(plain, chunk.subarray(within, within + (take / inputUnit) * outputUnit));
      } else {
        chunk.set(source, within);
      }
      if (this.trackCrc) this.crcValue = crc32(source, this.crcValue);
      done += take;
      this.committed += take;
    }
  }
}
