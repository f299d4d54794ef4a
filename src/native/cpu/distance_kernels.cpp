#include "distance_kernels.h"

#include <faiss/utils/fp16.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace knn::cpu {

namespace {

inline float value(const float* p, std::size_t i) { return p[i]; }
inline float value(const uint16_t* p, std::size_t i) { return faiss::decode_fp16(p[i]); }
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

template <typename T>
Kernels kernelsOf(bool innerProduct) {
  if (innerProduct) return {&queryDistance<T, true>, &pairDistance<T, true>, "scalar"};
  return {&queryDistance<T, false>, &pairDistance<T, false>, "scalar"};
}

bool cpuHasAvx2() {
#if defined(KNN_AVX2_KERNELS)
  const char* forced = std::getenv("KNN_CPU_KERNELS");
  if (forced != nullptr && std::strcmp(forced, "scalar") == 0) return false;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

}  // namespace

Kernels scalarKernels(Element element, bool innerProduct) {
  switch (element) {
    case Element::Float32: return kernelsOf<float>(innerProduct);
    case Element::Float16: return kernelsOf<uint16_t>(innerProduct);
    case Element::Int8: return kernelsOf<int8_t>(innerProduct);
  }
  return {};
}

Kernels kernelsFor(Element element, bool innerProduct) {
#if defined(KNN_AVX2_KERNELS)
  if (cpuHasAvx2()) return avx2Kernels(element, innerProduct);
#endif
  return scalarKernels(element, innerProduct);
}

}  // namespace knn::cpu
