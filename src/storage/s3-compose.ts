// An object written as one multipart upload whose middle is copied server-side from another object
// (UploadPartCopy with byte ranges): the index's storage section is the `.knnvec` we downloaded, so only the
// header + graph (first parts) and the id map (last parts) travel. Parts: the uploaded head, its last part padded
// with the first vector bytes to 5 MiB (every part but the last must be >= 5 MiB); then the copied ranges; then
// the uploaded tail. A changed source fails the write: every copy carries
// x-amz-copy-source-if-match with the ETag we downloaded, and since some servers ignore that header (Ceph RGW 16
// does), each copied part's ETag is checked against the MD5 of our own copy of the bytes where it is an MD5,
// and the source is HEADed again before the upload completes. A server that refuses the copy (501, 403, 400)
// gets those parts uploaded from memory instead; any failure aborts the upload. A middle of our own bytes
// (SentRange: converted vectors no object holds) is uploaded as those parts would be after a refusal, at once,
// while the caller still makes the head and tail.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { UploadPartCopyCommand } from '@aws-sdk/client-s3';
import type { CompletedPart } from '@aws-sdk/client-s3';
import { chain, slices } from './byte-ranges.js';
import { crc32, crc32Combine, crc32ToBase64 } from './crc32.js';
import { StorageError } from './errors.js';
import { linkedAbort, withRetries } from './retry.js';
import { classifyS3Error, httpStatus, shape } from './s3-errors.js';
import type { S3Access } from './s3.js';
import {
  PartReader,
  inMultipartUpload,
  raceFailure,
  checkWritten,
  uploadPart,
  uploadParts,
  uploadToS3,
} from './s3-upload.js';
import type {
  ComposeResult,
  ComposedEnds,
  ComposedObject,
  ComposedPlan,
  CopyRange,
  ObjectLocation,
  SentRange,
  WriteOptions,
} from './types.js';

/** S3's smallest part, except the last. */
export const MIN_PART_BYTES = 5 * 2 ** 20;
/** Bytes per UploadPartCopy (S3 allows 5 GiB): several parts copy in parallel. */
export const COPY_PART_BYTES = 256 * 2 ** 20;

type Options = WriteOptions & { signal: AbortSignal };

interface CopyPart {
  readonly number: number;
  /** Offsets in the copied range (not the source). */
  readonly from: number;
  readonly to: number;
}

/**
 * The composed object as one multipart upload: the copied parts start at once (while the caller may still be
 * making the bytes around them), the head and tail parts are uploaded once `ends` arrives. `copied` is called when
 * the copied parts are done (or have failed).
 */
export async function composeInS3(
  s3: S3Access,
  location: ObjectLocation,
  plan: ComposedPlan,
  ends: Promise<ComposedEnds>,
  options: Options,
  copied: () => void = () => undefined,
): Promise<ComposeResult> {
  const partBytes = s3.settings.writePartBytes;
  const { copy } = plan;
  // The head's last part must reach S3's minimum: pad it with the first bytes of the range.
  const headRest = plan.beforeBytes % partBytes;
  const pad = Math.min(copy.bytes, headRest === 0 ? 0 : Math.max(0, MIN_PART_BYTES - headRest));
  const copyBytes = copy.bytes - pad;
  if (copyBytes < MIN_PART_BYTES) {
    copied();
    const reason =
      'sent' in copy
        ? copy.sent
        : `the vectors (${copy.bytes} bytes) leave ${copyBytes} to copy once the first part is filled, under S3's 5 MiB part minimum`;
    return streamAll(
      s3,
      location,
      { ...plan, ...(await raceFailure(ends, options.signal)) },
      options,
      reason,
    );
  }
  const headParts = Math.ceil((plan.beforeBytes + pad) / partBytes);
  const copyParts = planCopyParts(pad, copy.bytes, headParts + 1);
  const tailFirst = headParts + copyParts.length + 1;
  const progress = new Progress(options.onProgress);
  // Part ETags are MD5s of the bytes only without SSE-KMS; with crc32 checksums S3 checks the whole object's CRC
  // (computed from our copy of the bytes) at completion instead.
  const verifyMd5 = s3.checksums === 'md5' && !options.encryptLike?.kmsKeyId;
  let refused: string | undefined;

  const total = await inMultipartUpload(s3, location, options, async (uploadId) => {
    const { signal, abort } = linkedAbort(options.signal);
    let firstError: { error: unknown } | undefined;
    const fail = (error: unknown) => {
      firstError ??= { error };
      abort(error);
      throw error;
    };
    const streamed = (body: Iterable<Uint8Array>, first: number, channel: number) => {
      const reader = new PartReader(
        Readable.from(body, { objectMode: false }),
        partBytes,
        s3.settings.writeConcurrency + 1,
        s3.checksums,
        first,
      );
      return reader.next().then((part) =>
        part
          ? uploadParts(s3, location, uploadId, part, reader, {
              ...options,
              signal,
              onProgress: (bytes) => progress.set(channel, bytes),
            })
          : { parts: [], bytes: 0, crc: 0 },
      );
    };
    // Both branches settle before we go on, so nothing is still sending when the upload is aborted.
    const [endsResult, copiedResult] = await Promise.allSettled([
      (async () => {
        const { before, after } = await raceFailure(ends, signal);
        const head = await streamed(chain(before, slices(await copy.local, 0, pad)), 1, 0);
        const tail = await streamed(after, tailFirst, 1);
        checkEnds(head.bytes - pad, tail.bytes, plan);
        if (head.parts.length > headParts) {
          throw new Error(`the head took ${head.parts.length} parts, planned ${headParts}`);
        }
        return { head, tail };
      })().catch(fail),
      copyAll(
        s3,
        location,
        uploadId,
        copy,
        copyParts,
        signal,
        progress,
        verifyMd5,
        (why) => (refused ??= why),
      )
        .catch(fail)
        .finally(copied),
    ]);
    if (firstError) throw firstError.error;
    const sent = (endsResult as PromiseFulfilledResult<{ head: Sent; tail: Sent }>).value;
    const copiedParts = (copiedResult as PromiseFulfilledResult<CopiedPart[]>).value;
    if (!('sent' in copy)) await checkSourceUnchanged(s3, copy, signal);
    let crc = sent.head.crc;
    for (const part of copiedParts) crc = crc32Combine(crc, part.crc, part.bytes);
    crc = crc32Combine(crc, sent.tail.crc, sent.tail.bytes);
    const parts = [...sent.head.parts, ...copiedParts.map((p) => p.completed), ...sent.tail.parts];
    parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    return { parts, bytes: sent.head.bytes + copy.bytes - pad + sent.tail.bytes, crc };
  });
  await checkWritten(s3, location, total, options.signal);
  const bytesCopied = refused ? 0 : copyBytes;
  return {
    bytes: total,
    bytesSent: total - bytesCopied,
    bytesCopied,
    path: refused ? 'stream' : 'copy',
    ...(refused ? { reason: refused } : {}),
  };
}

/** The bytes around the range must be as planned: the copied parts sit at offsets computed from them. */
function checkEnds(beforeBytes: number, afterBytes: number, plan: ComposedPlan): void {
  if (beforeBytes !== plan.beforeBytes || afterBytes !== plan.afterBytes) {
    throw new Error(
      `the bytes around the copied range are ${beforeBytes} + ${afterBytes}, planned ${plan.beforeBytes} + ${plan.afterBytes}`,
    );
  }
}

/** Everything sent, nothing copied: for ranges too small to copy. */
async function streamAll(
  s3: S3Access,
  location: ObjectLocation,
  object: Omit<ComposedObject, 'copy'> & { copy: CopyRange | SentRange },
  options: Options,
  reason: string,
): Promise<ComposeResult> {
  const body = chain(object.before, slices(await object.copy.local, 0, object.copy.bytes), object.after);
  const { bytes } = await uploadToS3(s3, location, Readable.from(body, { objectMode: false }), options);
  return { bytes, bytesSent: bytes, bytesCopied: 0, path: 'stream', reason };
}

/** Equal parts of at most COPY_PART_BYTES over [from, to), numbered from `first`. */
function planCopyParts(from: number, to: number, first: number): CopyPart[] {
  const count = Math.ceil((to - from) / COPY_PART_BYTES);
  const size = Math.ceil((to - from) / count);
  const parts: CopyPart[] = [];
  for (let at = from, n = first; at < to; at += size, n++) {
    parts.push({ number: n, from: at, to: Math.min(to, at + size) });
  }
  return parts;
}

interface Sent {
  readonly parts: CompletedPart[];
  readonly bytes: number;
  readonly crc: number;
}

interface CopiedPart {
  readonly completed: CompletedPart;
  readonly crc: number;
  readonly bytes: number;
}

/**
 * Copies the parts, writeConcurrency at once; after a refusal the remaining parts are uploaded instead. The copies
 * need none of our bytes, so all of them run even while those are still downloading; our bytes of each part (its
 * CRC, the MD5 check of the copy, or the upload after a refusal) are used once the copies are done.
 */
async function copyAll(
  s3: S3Access,
  location: ObjectLocation,
  uploadId: string,
  copy: CopyRange | SentRange,
  parts: readonly CopyPart[],
  signal: AbortSignal,
  progress: Progress,
  verifyMd5: boolean,
  onRefused: (why: string) => string,
): Promise<CopiedPart[]> {
  const copied = new Map<number, CopyPartResult>();
  // Bytes of ours (SentRange): every part is uploaded, as after a refusal.
  let refused: string | undefined = 'sent' in copy ? onRefused(copy.sent) : undefined;
  let bytes = 0;
  const concurrency = s3.settings.writeConcurrency;
  await eachAtOnce(parts, concurrency, signal, async (part) => {
    if (refused || 'sent' in copy) return;
    try {
      copied.set(part.number, await copyPart(s3, location, uploadId, copy, part, signal));
      bytes += part.to - part.from;
      progress.set(2, bytes);
    } catch (err) {
      const why = refusal(err);
      if (!why || signal.aborted) throw err;
      refused = onRefused(why);
    }
  });
  const local = await raceFailure(Promise.resolve(copy.local), signal);
  const done: CopiedPart[] = [];
  await eachAtOnce(parts, concurrency, signal, async (part) => {
    const result = copied.get(part.number);
    const partBytes = part.to - part.from;
    if (result && !('sent' in copy)) {
      // Checked piece by piece: a part that spans two chunks is never gathered into one buffer.
      const digest = digestOf(slices(local, part.from, part.to), s3.checksums === 'crc32', verifyMd5);
      done.push({
        completed: completedCopy(s3, copy, part, result, digest),
        crc: digest.crc,
        bytes: partBytes,
      });
      return;
    }
    const data = gather(local, part.from, part.to);
    const crc = s3.checksums === 'crc32' ? crc32(data) : 0;
    const completed = await uploadPart(s3, location, uploadId, localPart(s3, part.number, data, crc), signal);
    done.push({ completed, crc, bytes: partBytes });
    bytes += partBytes;
    progress.set(2, bytes);
  });
  return done.sort((a, b) => a.completed.PartNumber! - b.completed.PartNumber!);
}

/** Runs `fn` on every item, `concurrency` at once, in order; the first failure ends it (after those running). */
async function eachAtOnce<T>(
  items: readonly T[],
  concurrency: number,
  signal: AbortSignal,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      signal.throwIfAborted();
      await fn(items[next++]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

async function copyPart(
  s3: S3Access,
  location: ObjectLocation,
  uploadId: string,
  copy: CopyRange,
  part: CopyPart,
  signal: AbortSignal,
): Promise<CopyPartResult> {
  const start = copy.start + part.from;
  const out = await withRetries(
    () =>
      s3.client.send(
        new UploadPartCopyCommand({
          Bucket: location.container,
          Key: location.key,
          UploadId: uploadId,
          PartNumber: part.number,
          CopySource: copySource(copy.source),
          CopySourceRange: `bytes=${start}-${copy.start + part.to - 1}`,
          CopySourceIfMatch: copy.sourceVersion,
        }),
        { abortSignal: signal },
      ),
    s3.retry,
    // 501 means "not here", not "try again".
    (err) => (httpStatus(err) === 501 ? 'fatal' : classifyS3Error(err)),
    signal,
  );
  const etag = out.CopyPartResult?.ETag;
  if (!etag) throw new Error(`UploadPartCopy ${part.number} returned no ETag`);
  return { etag, ...(out.CopyPartResult?.ChecksumCRC32 ? { crc32: out.CopyPartResult.ChecksumCRC32 } : {}) };
}

/** What UploadPartCopy answered for a part. */
interface CopyPartResult {
  readonly etag: string;
  readonly crc32?: string;
}

/** A copied part for CompleteMultipartUpload, once our bytes of it are here to check it against. */
function completedCopy(
  s3: S3Access,
  copy: CopyRange,
  part: CopyPart,
  copied: CopyPartResult,
  digest: Digest,
): CompletedPart {
  if (digest.md5 !== undefined) checkCopiedBytes(s3, copy, part, copied.etag, digest.md5);
  return {
    PartNumber: part.number,
    ETag: copied.etag,
    ...(s3.checksums === 'crc32' ? { ChecksumCRC32: copied.crc32 ?? crc32ToBase64(digest.crc) } : {}),
  };
}

/** Our bytes of a part, hashed: the CRC32 (0 unless asked for) and the MD5 (hex, when asked for). */
interface Digest {
  readonly crc: number;
  readonly md5?: string;
}

function digestOf(pieces: Iterable<Uint8Array>, withCrc: boolean, withMd5: boolean): Digest {
  let crc = 0;
  const md5 = withMd5 ? createHash('md5') : undefined;
  for (const piece of pieces) {
    if (withCrc) crc = crc32(piece, crc);
    md5?.update(piece);
  }
  return md5 ? { crc, md5: md5.digest('hex') } : { crc };
}

/** A plain part's ETag is the MD5 of its bytes: a copy that differs from ours means the source changed. */
function checkCopiedBytes(s3: S3Access, copy: CopyRange, part: CopyPart, etag: string, md5: string): void {
  const got = etag.replace(/"/g, '');
  if (!/^[0-9a-f]{32}$/i.test(got)) return; // SSE-KMS and others: not an MD5
  if (md5 === got.toLowerCase()) return;
  throw changed(
    s3,
    copy,
    `bytes ${copy.start + part.from}-${copy.start + part.to - 1} differ from those downloaded`,
  );
}

async function checkSourceUnchanged(s3: S3Access, copy: CopyRange, signal: AbortSignal): Promise<void> {
  const { etag } = await s3.headObject(copy.source, signal);
  if (etag !== undefined && sameEtag(etag, copy.sourceVersion)) return;
  throw changed(s3, copy, `its ETag is now ${etag ?? 'absent'}, was ${copy.sourceVersion}`);
}

function changed(s3: S3Access, copy: CopyRange, detail: string): StorageError {
  return new StorageError(
    'Changed',
    `${s3.address(copy.source)} changed while the index was written (${detail}); build again from the new vectors`,
    { location: copy.source },
  );
}

function sameEtag(a: string, b: string): boolean {
  return a.replace(/"/g, '') === b.replace(/"/g, '');
}

/** Why the server would not copy (so we send the bytes), or undefined for errors that must fail the write. */
function refusal(err: unknown): string | undefined {
  const status = httpStatus(err);
  const { name = 'error', message = '' } = shape(err);
  if (status === 412) return undefined; // precondition: the source changed
  if (status === 501 || status === 403 || (status === 400 && name !== 'InvalidRange')) {
    return `the store refused UploadPartCopy (${status} ${name}${message ? `: ${message}` : ''})`;
  }
  return undefined;
}

function copySource(source: ObjectLocation): string {
  return `${source.container}/${source.key.split('/').map(encodeURIComponent).join('/')}`;
}

function localPart(s3: S3Access, number: number, data: Buffer, crc: number) {
  const md5 = s3.checksums === 'md5' ? createHash('md5').update(data).digest('base64') : undefined;
  return { number, data, crc32: crc, md5, buffer: data };
}

/** [from, to) as one Buffer: a view when it lies in one chunk, else a copy. */
function gather(chunks: readonly Uint8Array[], from: number, to: number): Buffer {
  const pieces = [...slices(chunks, from, to)];
  if (pieces.length === 1)
    return Buffer.from(pieces[0]!.buffer, pieces[0]!.byteOffset, pieces[0]!.byteLength);
  return Buffer.concat(pieces);
}

/** Sums the bytes done on several channels (head, tail, copies) for one onProgress. */
class Progress {
  private readonly done = [0, 0, 0];
  constructor(private readonly onProgress: ((bytes: number) => void) | undefined) {}
  set(channel: number, bytes: number): void {
    this.done[channel] = bytes;
    this.onProgress?.(this.done[0]! + this.done[1]! + this.done[2]!);
  }
}
