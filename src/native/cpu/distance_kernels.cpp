#include "distance_kernels.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace knn::cpu {

namespace {

inline float value(const float* p, std::size_t i) { return p[i]; }
inline float value(const uint16_t* p, std::size_t i) { return decodeFp16(p[i]); }
inline float value(const int8_t* p, std::size_t i) { return static_cast<float>(p[i]); }

// Four partial sums break the add dependency chain that makes a single-accumulator loop slow.
template <bool InnerProduct, typename A, typename B>
float distance(const A* a, const B* b, std::size_t d) {
  float s[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    for (std::size_t j = 0; j < 4; j++) {
      const float x = value(a, i + j);
      const float y = value(b, i + j);
      s[j] += InnerProduct ? x * y : (x - y) * (x - y);
    }
  }
  for (; i < d; i++) {
    const float x = value(a, i);
    const float y = value(b, i);
    s[0] += InnerProduct ? x * y : (x - y) * (x - y);
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

template <typename T, bool InnerProduct>
float queryDistance(const float* q, const void* v, std::size_t d) {
  return distance<InnerProduct>(q, static_cast<const T*>(v), d);
}

template <typename T, bool InnerProduct>
float pairDistance(const void* a, const void* b, std::size_t d) {
  return distance<InnerProduct>(static_cast<const T*>(a), static_cast<const T*>(b), d);
}

template <typename T, bool InnerProduct>
void query4Distance(const float* q, const void* const* v, std::size_t d, float* out) {
  for (int k = 0; k < 4; k++) out[k] = distance<InnerProduct>(q, static_cast<const T*>(v[k]), d);
}

template <typename T>
void widen(const void* v, std::size_t d, float* out) {
  for (std::size_t i = 0; i < d; i++) out[i] = value(static_cast<const T*>(v), i);
}

template <typename T>
Kernels kernelsOf(bool innerProduct) {
  if (innerProduct)
    return {&queryDistance<T, true>, &pairDistance<T, true>, &query4Distance<T, true>, &widen<T>, "scalar"};
  return {&queryDistance<T, false>, &pairDistance<T, false>, &query4Distance<T, false>, &widen<T>, "scalar"};
}

float hammingPortable(const void* a, const void* b, std::size_t bytes) {
  const auto* x = static_cast<const uint8_t*>(a);
  const auto* y = static_cast<const uint8_t*>(b);
  unsigned total = 0;
  for (std::size_t i = 0; i < bytes; i++) {
    unsigned v = x[i] ^ y[i];
    v = v - ((v >> 1) & 0x55u);
    v = (v & 0x33u) + ((v >> 2) & 0x33u);
    total += (v + (v >> 4)) & 0x0Fu;
  }
  return static_cast<float>(total);
}

void hammingPortable4(const void* q, const void* const* codes, std::size_t bytes, float* out) {
  for (int k = 0; k < 4; k++) out[k] = hammingPortable(q, codes[k], bytes);
}

bool cpuHasAvx2() {
#if defined(KNN_AVX2_KERNELS)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

}  // namespace

float decodeFp16(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // infinity or NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // signed zero
  } else {
    int e = 113;  // subnormal: normalise the mantissa
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      e--;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mantissa & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

HammingKernels scalarHamming() { return {&hammingPortable, &hammingPortable4}; }

HammingKernels hammingFor(bool portable) {
#if defined(KNN_AVX2_KERNELS)
  if (!portable && cpuHasAvx2() && __builtin_cpu_supports("popcnt")) return popcntHamming();
#endif
  return scalarHamming();
}

Kernels scalarKernels(Element element, bool innerProduct) {
  switch (element) {
    case Element::Float32: return kernelsOf<float>(innerProduct);
    case Element::Float16: return kernelsOf<uint16_t>(innerProduct);
    case Element::Int8: return kernelsOf<int8_t>(innerProduct);
  }
  return {};
}

Kernels kernelsFor(Element element, bool innerProduct, bool portable) {
#if defined(KNN_AVX2_KERNELS)
  if (!portable && cpuHasAvx2()) return avx2Kernels(element, innerProduct);
#endif
  return scalarKernels(element, innerProduct);
}

}  // namespace knn::cpu
