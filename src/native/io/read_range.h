// A byte range of an open file read into JS memory by several threads (the local store's reads).
#pragma once
#include <napi.h>

#include <cstdint>

namespace knn::io {
// Bytes per pread: large enough that syscall and scheduling costs vanish, small enough that a cancel is prompt and
// the threads share the work evenly. Chunk boundaries fall on multiples of it in the file (aligned reads).
constexpr int64_t kDefaultReadChunkBytes = int64_t{8} << 20;

// readFileRange(fd, offset, targets: Uint8Array[], options?, onProgress?) -> Promise<bytes read>.
// Fills the targets, in order, with the file's bytes from `offset` on. options: { label?: string (names the file
// in errors), threads?: number, chunkBytes?: number, hugePages?: boolean (default true: advise transparent huge
// pages on the targets), direct?: boolean (default false: O_DIRECT reads through aligned buffers, buffered
// where the file system refuses O_DIRECT), cancel?: Int32Array (element 0 non-zero: stop between chunks) }. onProgress(bytesDone, bytesTotal) is called on the JS thread every ~50 ms. The promise settles only
// after every thread has stopped; it rejects with an Error whose `code` is the errno name (ESHRANK: the file is
// shorter than the range, ABORT_ERR: cancelled).
Napi::Value ReadFileRange(const Napi::CallbackInfo& info);
}  // namespace knn::io
