// Element conversions the download and the writer apply to gigabytes of vectors, at memory speed:
// float32 -> fp16 (half_float storage) and int8 -> Faiss's QT_8bit_direct_signed codes (byte storage).
#pragma once
#include <napi.h>

namespace knn::convert {
// f32ToF16(input: Uint8Array (little-endian float32), output: Uint8Array (half as long)): round to nearest even,
// NaN stays a quiet NaN, overflow becomes infinity (as numpy and vcvtps2ph do). Synchronous; large inputs are
// split over a few threads.
Napi::Value F32ToF16(const Napi::CallbackInfo& info);
// int8Codes(input: Uint8Array (int8), output: Uint8Array (same length)): output[i] = input[i] ^ 0x80.
Napi::Value Int8Codes(const Napi::CallbackInfo& info);
// findFloat32AtLeast(values: Uint8Array (float32), from, biasedExponent) -> the first element index >= from whose
// exponent bits are >= biasedExponent (NaN and Inf included), or -1. The NaN/Inf/overflow scan of every float
// .knnvec, on several threads (src/vectors/scan.ts has the same in JS).
Napi::Value FindFloat32AtLeast(const Napi::CallbackInfo& info);
// findNonFiniteFloat16(values: Uint8Array (fp16)) -> the first NaN or Inf, or -1.
Napi::Value FindNonFiniteFloat16(const Napi::CallbackInfo& info);
}  // namespace knn::convert
