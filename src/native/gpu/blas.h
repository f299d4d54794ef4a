// The builder's only door to cuBLAS (blas.cpp): fp16 inputs, fp32 accumulate, tensor cores.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace knn::gpu {

class Blas {
 public:
  explicit Blas(cudaStream_t stream);
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  ~Blas();

  // out[i * ldo + j] = alpha * q_i . b_j for i < nq, j < nb; rows of q and b are `dim` halves apart.
  void scores(const __half* q, int64_t nq, const __half* b, int64_t nb, int dim, float alpha, float* out,
              int64_t ldo);

  // The same for `batch` independent (q, b, out) triples given as device arrays of pointers, each nq x nb
  // with ldo = nb.
  void scoresBatched(const __half* const* q, const __half* const* b, float* const* out, int nq, int nb, int dim,
                     float alpha, int batch);

 private:
  void* handle_ = nullptr;
};

}  // namespace knn::gpu
