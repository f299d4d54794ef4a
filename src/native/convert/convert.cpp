// float32 -> fp16 with F16C where the CPU has it (chosen at run time: Debian's baseline is plain x86-64), else
// the same bit arithmetic as src/vectors/fp16.ts; int8 codes as a byte-wise XOR the compiler vectorizes.
// Inputs of a few MiB and more are split over threads so one conversion keeps up with the network and disk.
#include "convert.h"

#include <algorithm>
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

}  // namespace

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
