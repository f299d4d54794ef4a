// AVX2 + FMA + F16C kernels, and POPCNT for hamming. This file alone is compiled with -mavx2 -mfma -mf16c
// -mpopcnt (CMakeLists.txt), and kernelsFor() / hammingFor() call into it only when the CPU has them all. So
// nothing defined here may be an inline or template entity that other files also use (the linker could keep this
// AVX2 copy for them): everything is in an anonymous namespace, and no standard-library header with inline code
// is included.
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

// One query against four vectors: each query load feeds four independent FMA chains (the HNSW search scores a
// node's unvisited neighbours four at a time).
template <bool InnerProduct, typename B>
void distance4(const float* q, const B* v0, const B* v1, const B* v2, const B* v3, std::size_t d, float* out) {
  __m256 s0 = _mm256_setzero_ps();
  __m256 s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps();
  __m256 s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 x = load8(q + i);
    s0 = accumulate<InnerProduct>(s0, x, load8(v0 + i));
    s1 = accumulate<InnerProduct>(s1, x, load8(v1 + i));
    s2 = accumulate<InnerProduct>(s2, x, load8(v2 + i));
    s3 = accumulate<InnerProduct>(s3, x, load8(v3 + i));
  }
  float r[4] = {horizontalSum(s0), horizontalSum(s1), horizontalSum(s2), horizontalSum(s3)};
  const B* v[4] = {v0, v1, v2, v3};
  for (; i < d; i++) {
    const float x = q[i];
    for (int k = 0; k < 4; k++) {
      const float y = load1(v[k] + i);
      r[k] += InnerProduct ? x * y : (x - y) * (x - y);
    }
  }
  for (int k = 0; k < 4; k++) out[k] = r[k];
}

template <typename T, bool InnerProduct>
void query4Distance(const float* q, const void* const* v, std::size_t d, float* out) {
  distance4<InnerProduct>(q, static_cast<const T*>(v[0]), static_cast<const T*>(v[1]), static_cast<const T*>(v[2]),
                          static_cast<const T*>(v[3]), d, out);
}

template <typename T>
void widen(const void* v, std::size_t d, float* out) {
  const T* x = static_cast<const T*>(v);
  std::size_t i = 0;
  for (; i + 8 <= d; i += 8) _mm256_storeu_ps(out + i, load8(x + i));
  for (; i < d; i++) out[i] = load1(x + i);
}

template <typename T>
Kernels kernelsOf(bool innerProduct) {
  if (innerProduct)
    return {&queryDistance<T, true>, &pairDistance<T, true>, &query4Distance<T, true>, &widen<T>, "avx2"};
  return {&queryDistance<T, false>, &pairDistance<T, false>, &query4Distance<T, false>, &widen<T>, "avx2"};
}

float hammingPopcnt(const void* a, const void* b, std::size_t bytes) {
  const auto* x = static_cast<const uint8_t*>(a);
  const auto* y = static_cast<const uint8_t*>(b);
  long long total = 0;
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    unsigned long long u, v;
    __builtin_memcpy(&u, x + i, 8);
    __builtin_memcpy(&v, y + i, 8);
    total += _mm_popcnt_u64(u ^ v);
  }
  for (; i < bytes; i++) total += _mm_popcnt_u32(static_cast<unsigned>(x[i] ^ y[i]));
  return static_cast<float>(total);
}

inline unsigned long long word(const uint8_t* p) {
  unsigned long long w;
  __builtin_memcpy(&w, p, 8);
  return w;
}

// One code against four: each query word is loaded once, four independent popcount chains.
void hammingPopcnt4(const void* q, const void* const* codes, std::size_t bytes, float* out) {
  const auto* x = static_cast<const uint8_t*>(q);
  const auto* c0 = static_cast<const uint8_t*>(codes[0]);
  const auto* c1 = static_cast<const uint8_t*>(codes[1]);
  const auto* c2 = static_cast<const uint8_t*>(codes[2]);
  const auto* c3 = static_cast<const uint8_t*>(codes[3]);
  long long t0 = 0, t1 = 0, t2 = 0, t3 = 0;
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    const unsigned long long w = word(x + i);
    t0 += _mm_popcnt_u64(w ^ word(c0 + i));
    t1 += _mm_popcnt_u64(w ^ word(c1 + i));
    t2 += _mm_popcnt_u64(w ^ word(c2 + i));
    t3 += _mm_popcnt_u64(w ^ word(c3 + i));
  }
  for (; i < bytes; i++) {
    t0 += _mm_popcnt_u32(static_cast<unsigned>(x[i] ^ c0[i]));
    t1 += _mm_popcnt_u32(static_cast<unsigned>(x[i] ^ c1[i]));
    t2 += _mm_popcnt_u32(static_cast<unsigned>(x[i] ^ c2[i]));
    t3 += _mm_popcnt_u32(static_cast<unsigned>(x[i] ^ c3[i]));
  }
  out[0] = static_cast<float>(t0);
  out[1] = static_cast<float>(t1);
  out[2] = static_cast<float>(t2);
  out[3] = static_cast<float>(t3);
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

HammingKernels popcntHamming() { return {&hammingPopcnt, &hammingPopcnt4}; }

}  // namespace knn::cpu
