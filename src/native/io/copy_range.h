// Kernel-side byte-range copy between two open files (the local store's copy of the storage section).
#pragma once
#include <napi.h>

namespace knn::io {
// copyFileRange(srcFd, srcOffset, dstFd, dstOffset, length) -> Promise<number of bytes copied>.
// Runs copy_file_range(2) off the JS thread; rejects with an Error whose `code` is the errno name (EXDEV,
// EOPNOTSUPP, ENOSYS, ...) so the caller can fall back to read + write.
Napi::Value CopyFileRange(const Napi::CallbackInfo& info);
}  // namespace knn::io
