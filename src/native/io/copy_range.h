// Kernel-side byte-range copy between two open files (the local store's copy of the storage section).
#pragma once
#include <napi.h>

#include <cstdint>

namespace knn::io {
// Bytes per copy_file_range call: a cancel waits for at most one per thread.
constexpr int64_t kDefaultCopyChunkBytes = int64_t{32} << 20;

// copyFileRange(srcFd, srcOffset, dstFd, dstOffset, length, options?, onProgress?)
//   -> Promise<{ bytes, method: 'reflink' | 'copy_file_range' | 'pread/pwrite', reason?: string }>.
// Off the JS thread, several threads over disjoint chunks; `reason` says why earlier methods were passed over.
// options: { label?: string (names the files in errors), threads?, chunkBytes?, cancel?: Int32Array, reflink?:
// false, copyFileRange?: false (tests: force the pread/pwrite path), writeback?: false }. onProgress(bytesDone,
// length) every ~50 ms. Rejects with an Error whose `code` is the errno name (ESHRANK: the source is shorter than
// the range, ABORT_ERR: cancelled); the promise settles only after every thread has stopped.
Napi::Value CopyFileRange(const Napi::CallbackInfo& info);
}  // namespace knn::io
