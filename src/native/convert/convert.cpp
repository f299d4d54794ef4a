// float32 -> fp16 with F16C where the CPU has it (chosen at run time: Debian's baseline is plain x86-64), else
// the same bit arithmetic as src/vectors/fp16.ts; int8 codes as a byte-wise XOR the compiler vectorizes.
// Inputs of a few MiB and more are split over threads so one conversion keeps up with the network and disk.
#include "convert.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace knn::convert {
namespace {

// Below this many input bytes one thread does the work (thread start-up would cost more than it saves).
constexpr size_t kThreadedBytes = 4u << 20;
constexpr unsigned kMaxThreads = 8;

uint16_t halfBits(uint32_t bits) {
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t abs = bits & 0x7fffffffu;
  if (abs >= 0x38800000u) {
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | (abs > 0x7f800000u ? 0x7e00u | ((abs >> 13) & 0x3ffu) : 0x7c00u));
    return static_cast<uint16_t>(sign | ((abs - 0x38000000u + 0xfffu + ((abs >> 13) & 1u)) >> 13));
  }
  if (abs <= 0x33000000u) return static_cast<uint16_t>(sign);
  uint32_t exponent = abs >> 23;
  uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126 - exponent;
  uint32_t q = mantissa >> shift;
  uint32_t rest = mantissa & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (q & 1u))) q++;
  return static_cast<uint16_t>(sign | q);
}

void halfScalar(const uint8_t* in, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    std::memcpy(&bits, in + 4 * i, 4);
    uint16_t h = halfBits(bits);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void halfF16c(const uint8_t* in, uint8_t* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(reinterpret_cast<const float*>(in + 4 * i));
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), h);
  }
  halfScalar(in + 4 * i, out + 2 * i, n - i);
}

bool hasF16c() {
  static const bool yes = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return yes;
}
#endif

void halfRange(const uint8_t* in, uint8_t* out, size_t n) {
#if defined(__x86_64__)
  if (hasF16c()) return halfF16c(in, out, n);
#endif
  halfScalar(in, out, n);
}

void xorRange(const uint8_t* in, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = static_cast<uint8_t>(in[i] ^ 0x80u);
}

// Runs fn(first, count) over [0, n) elements, on several threads when the input is large.
template <typename Fn>
void parallel(size_t n, size_t inputBytes, Fn fn) {
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  unsigned threads = inputBytes < kThreadedBytes ? 1u : std::min({hw, kMaxThreads, static_cast<unsigned>(inputBytes / (kThreadedBytes / 2))});
  if (threads <= 1) return fn(0, n);
  size_t per = (n + threads - 1) / threads;
  per = (per + 63) & ~size_t{63};  // whole cache lines per thread
  std::vector<std::thread> pool;
  for (size_t first = per; first < n; first += per) pool.emplace_back(fn, first, std::min(per, n - first));
  fn(0, std::min(per, n));
  for (auto& t : pool) t.join();
}

struct Bytes {
  uint8_t* data;
  size_t length;
};

Bytes bytesArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Uint8Array");
  }
  auto a = info[i].As<Napi::Uint8Array>();
  return {a.Data(), a.ByteLength()};
}

// The first index in [from, n) where hit(i) holds, or -1. Several threads each scan a slice in blocks: a
// branch-free pass over a block (which the compiler vectorizes) says whether it holds a hit, and only such a block
// is searched element by element. A thread stops once an earlier slice has a hit; the lowest hit wins.
template <typename Hit>
int64_t parallelFind(size_t from, size_t n, size_t elementBytes, Hit hit) {
  if (from >= n) return -1;
  constexpr size_t kBlock = 1024;
  std::atomic<int64_t> best{INT64_MAX};
  parallel(n - from, (n - from) * elementBytes, [&](size_t first, size_t count) {
    const size_t end = from + first + count;
    for (size_t i = from + first; i < end;) {
      if (static_cast<int64_t>(i) > best.load(std::memory_order_relaxed)) return;
      const size_t stop = std::min(end, i + kBlock);
      unsigned any = 0;
      for (size_t j = i; j < stop; j++) any |= hit(j) ? 1u : 0u;
      if (any) {
        while (!hit(i)) i++;
        int64_t seen = best.load(std::memory_order_relaxed);
        while (static_cast<int64_t>(i) < seen && !best.compare_exchange_weak(seen, static_cast<int64_t>(i))) {
        }
        return;
      }
      i = stop;
    }
  });
  const int64_t found = best.load();
  return found == INT64_MAX ? -1 : found;
}

}  // namespace

Napi::Value FindFloat32AtLeast(const Napi::CallbackInfo& info) {
  Bytes in = bytesArg(info, 0, "values");
  if (in.length % 4 != 0) throw Napi::RangeError::New(info.Env(), "findFloat32AtLeast: values must be whole float32s");
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber())
    throw Napi::TypeError::New(info.Env(), "findFloat32AtLeast(values, from, biasedExponent)");
  const int64_t fromArg = info[1].As<Napi::Number>().Int64Value();
  const uint32_t threshold = static_cast<uint32_t>(info[2].As<Napi::Number>().Uint32Value()) << 23;
  const size_t n = in.length / 4;
  const size_t from = static_cast<size_t>(std::max<int64_t>(0, fromArg));
  const uint8_t* data = in.data;
  const int64_t at = parallelFind(from, n, 4, [&](size_t i) {
    uint32_t bits;
    std::memcpy(&bits, data + 4 * i, 4);
    return (bits & 0x7f800000u) >= threshold;
  });
  return Napi::Number::New(info.Env(), static_cast<double>(at));
}

Napi::Value FindNonFiniteFloat16(const Napi::CallbackInfo& info) {
  Bytes in = bytesArg(info, 0, "values");
  if (in.length % 2 != 0) throw Napi::RangeError::New(info.Env(), "findNonFiniteFloat16: values must be whole fp16s");
  const uint8_t* data = in.data;
  const int64_t at = parallelFind(0, in.length / 2, 2, [&](size_t i) {
    uint16_t bits;
    std::memcpy(&bits, data + 2 * i, 2);
    return (bits & 0x7c00u) == 0x7c00u;
  });
  return Napi::Number::New(info.Env(), static_cast<double>(at));
}

Napi::Value F32ToF16(const Napi::CallbackInfo& info) {
  Bytes in = bytesArg(info, 0, "input");
  Bytes out = bytesArg(info, 1, "output");
  if (in.length % 4 != 0 || out.length * 2 != in.length) {
    throw Napi::RangeError::New(info.Env(), "f32ToF16: input must be whole float32 values and output half as long");
  }
  parallel(in.length / 4, in.length, [&](size_t first, size_t count) {
    halfRange(in.data + 4 * first, out.data + 2 * first, count);
  });
  return info.Env().Undefined();
}

Napi::Value Int8Codes(const Napi::CallbackInfo& info) {
  Bytes in = bytesArg(info, 0, "input");
  Bytes out = bytesArg(info, 1, "output");
  if (out.length != in.length) throw Napi::RangeError::New(info.Env(), "int8Codes: output must be as long as input");
  parallel(in.length, in.length, [&](size_t first, size_t count) { xorRange(in.data + first, out.data + first, count); });
  return info.Env().Undefined();
}

}  // namespace knn::convert
