// AVX2 + FMA + F16C kernels. This file alone is compiled with -mavx2 -mfma -mf16c (CMakeLists.txt), and
// kernelsFor() calls into it only when the CPU has all three. So nothing defined here may be an inline or
// template entity that other files also use (the linker could keep this AVX2 copy for them): everything is in
// an anonymous namespace, and no Faiss or standard-library header with inline code is included.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "distance_kernels.h"

namespace knn::cpu {

namespace {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

inline float load1(const float* p) { return *p; }
inline float load1(const uint16_t* p) { return _cvtsh_ss(*p); }
inline float load1(const int8_t* p) { return static_cast<float>(*p); }

inline float horizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <bool InnerProduct>
inline __m256 accumulate(__m256 sum, __m256 x, __m256 y) {
  if (InnerProduct) return _mm256_fmadd_ps(x, y, sum);
  const __m256 t = _mm256_sub_ps(x, y);
  return _mm256_fmadd_ps(t, t, sum);
}

// Four accumulators of 8 lanes keep two FMA units busy despite the FMA latency (long vectors: 768 dims and
// more); the rest runs 8 lanes at a time, the tail (d % 8) one element at a time.
template <bool InnerProduct, typename A, typename B>
float distance(const A* a, const B* b, std::size_t d) {
  __m256 s0 = _mm256_setzero_ps();
  __m256 s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps();
  __m256 s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = accumulate<InnerProduct>(s0, load8(a + i), load8(b + i));
    s1 = accumulate<InnerProduct>(s1, load8(a + i + 8), load8(b + i + 8));
    s2 = accumulate<InnerProduct>(s2, load8(a + i + 16), load8(b + i + 16));
    s3 = accumulate<InnerProduct>(s3, load8(a + i + 24), load8(b + i + 24));
  }
  for (; i + 8 <= d; i += 8) s0 = accumulate<InnerProduct>(s0, load8(a + i), load8(b + i));
  float s = horizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < d; i++) {
    const float x = load1(a + i);
    const float y = load1(b + i);
    s += InnerProduct ? x * y : (x - y) * (x - y);
  }
  return s;
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
  if (innerProduct) return {&queryDistance<T, true>, &pairDistance<T, true>, "avx2"};
  return {&queryDistance<T, false>, &pairDistance<T, false>, "avx2"};
}

}  // namespace

Kernels avx2Kernels(Element element, bool innerProduct) {
  switch (element) {
    case Element::Float32: return kernelsOf<float>(innerProduct);
    case Element::Float16: return kernelsOf<uint16_t>(innerProduct);
    case Element::Int8: return kernelsOf<int8_t>(innerProduct);
  }
  return {};
}

}  // namespace knn::cpu
