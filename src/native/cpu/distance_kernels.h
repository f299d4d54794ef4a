// Distance kernels for the CPU builder's in-place storage: squared L2 or inner product between a float query and
// a stored vector (float32, fp16 bits or int8), or between two stored vectors, always on exact float values.
// Debian's libfaiss is built for baseline x86-64 (its fvec_L2sqr is a scalar loop), so we bring our own:
// AVX2/FMA/F16C where the CPU has them, portable loops elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>

namespace knn::cpu {

enum class Element { Float32, Float16, Int8 };

// distance(query floats, stored vector, dimension)
using QueryKernel = float (*)(const float* query, const void* vector, std::size_t dimension);
// distance(stored vector, stored vector, dimension)
using PairKernel = float (*)(const void* a, const void* b, std::size_t dimension);
// out[k] = distance(query floats, vectors[k], dimension) for k < 4: the query is read once for four vectors.
using Query4Kernel = void (*)(const float* query, const void* const* vectors, std::size_t dimension, float* out);
// out[0..dimension) = the stored vector's exact float values.
using WidenKernel = void (*)(const void* vector, std::size_t dimension, float* out);
// hamming distance between two packed-bit codes of `bytes` bytes.
using BitsKernel = float (*)(const void* a, const void* b, std::size_t bytes);
// out[k] = hamming distance between code q and codes[k], k < 4.
using Bits4Kernel = void (*)(const void* q, const void* const* codes, std::size_t bytes, float* out);

struct HammingKernels {
  BitsKernel one = nullptr;
  Bits4Kernel four = nullptr;
};

struct Kernels {
  QueryKernel query = nullptr;
  PairKernel pair = nullptr;
  Query4Kernel query4 = nullptr;
  WidenKernel widen = nullptr;
  const char* isa = "";  // "avx2" or "scalar", for logs and tests
};

// The fastest kernels this CPU runs, or the portable ones when `portable` (BuildOptions::portableKernels: tests
// compare both).
Kernels kernelsFor(Element element, bool innerProduct, bool portable = false);

Kernels scalarKernels(Element element, bool innerProduct);
#if defined(KNN_AVX2_KERNELS)
Kernels avx2Kernels(Element element, bool innerProduct);  // only where the CPU has AVX2, FMA and F16C
#endif

// Hamming distance: hardware popcount where the CPU has it (with AVX2), a portable loop elsewhere.
HammingKernels hammingFor(bool portable = false);
HammingKernels scalarHamming();
#if defined(KNN_AVX2_KERNELS)
HammingKernels popcntHamming();
#endif

// fp16 bits -> float, exactly (subnormals, infinities and NaN included).
float decodeFp16(uint16_t bits);

}  // namespace knn::cpu
