// `.knndid` blobs (k-NN's DocIdInputStream): `doc_count` little-endian int32 Lucene doc ids, in vector order and
// strictly increasing (k-NN's memory-optimized reader relies on that). They become the index's id map.
import type { HostBlob, ReadOptions } from '../storage/types.js';
import { VectorDataError } from './errors.js';

/** How to ask the storage layer for a `.knndid`: its size checked (checkDocIdObjectSize) before downloading. */
export function knndidReadOptions(count: number): Pick<ReadOptions, 'checkSize'> {
  return { checkSize: (bytes) => checkDocIdObjectSize(count, bytes) };
}

/** Throws VectorDataError unless an object of `objectBytes` bytes holds exactly `count` doc ids. */
export function checkDocIdObjectSize(count: number, objectBytes: number): void {
  if (objectBytes !== count * 4) throw docIdSizeError(count, objectBytes);
}

/** The doc ids as one Int32Array (a view of the blob when it is one aligned chunk, else a copy), checked. */
export function parseDocIdBlob(blob: HostBlob, count: number): Int32Array {
  checkDocIdObjectSize(count, blob.byteLength);
  const ids = joinInt32(blob);
  checkDocIds(ids);
  return ids;
}

/** Throws VectorDataError unless the ids are non-negative and strictly increasing. */
export function checkDocIds(ids: Int32Array): void {
  const n = ids.length;
  if (n > 0 && ids[0]! < 0) {
    throw new VectorDataError(
      'NEGATIVE_DOC_ID',
      `doc id at position 0 is ${ids[0]}; Lucene doc ids are >= 0`,
    );
  }
  for (let i = 1; i < n; i++) {
    if (ids[i]! <= ids[i - 1]!) {
      throw new VectorDataError(
        'DOC_IDS_NOT_INCREASING',
        `doc ids must be strictly increasing: position ${i} holds ${ids[i]} after ${ids[i - 1]} at position ${i - 1}`,
      );
    }
  }
}

function joinInt32(blob: HostBlob): Int32Array {
  const only = blob.chunks.length === 1 ? blob.chunks[0]! : undefined;
  if (only && only.byteOffset % 4 === 0)
    return new Int32Array(only.buffer, only.byteOffset, only.byteLength / 4);
  const ids = new Int32Array(blob.byteLength / 4);
  const bytes = new Uint8Array(ids.buffer);
  let at = 0;
  for (const chunk of blob.chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return ids;
}

function docIdSizeError(count: number, bytes: number): VectorDataError {
  const whole = Math.floor(bytes / 4);
  const stray = bytes % 4;
  if (stray === 0) {
    return new VectorDataError(
      'DOC_ID_COUNT_MISMATCH',
      `.knndid holds ${whole} doc ids (${bytes} bytes) but doc_count is ${count} (${count * 4} bytes expected)`,
    );
  }
  return new VectorDataError(
    'DOC_ID_BYTES_MISMATCH',
    `.knndid holds ${bytes} bytes, which is not a whole number of 4-byte doc ids (${whole} ids and ${stray} ` +
      `stray bytes); doc_count ${count} needs ${count * 4} bytes`,
  );
}
