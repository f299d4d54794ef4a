// cuBLAS calls of the GPU builder. Row-major scores out (nq x nb) = q (nq x dim) . b^T are computed as the
// column-major product out^T (nb x nq) = b^T' . q' where b' and q' are the row-major arrays read as
// column-major dim x n matrices.
#include "blas.h"

#include <cublas_v2.h>

#include <stdexcept>
#include <string>

#include "device.h"

namespace knn::gpu {

namespace {

[[noreturn]] void throwBlas(cublasStatus_t st, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                           " failed: " + cublasGetStatusName(st) + " (" + cublasGetStatusString(st) + ")");
}

#define KNN_CUBLAS(call)                                                                  \
  do {                                                                                    \
    cublasStatus_t knn_st_ = (call);                                                      \
    if (knn_st_ != CUBLAS_STATUS_SUCCESS) throwBlas(knn_st_, #call, __FILE__, __LINE__);  \
  } while (0)

cublasHandle_t h(void* p) { return static_cast<cublasHandle_t>(p); }

}  // namespace

Blas::Blas(cudaStream_t stream) {
  cublasHandle_t handle = nullptr;
  KNN_CUBLAS(cublasCreate(&handle));
  handle_ = handle;
  try {
    KNN_CUBLAS(cublasSetStream(handle, stream));
    // fp16 inputs with fp32 accumulation on tensor cores; GemmEx picks them from the types anyway.
    KNN_CUBLAS(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
  } catch (...) {
    cublasDestroy(handle);
    throw;
  }
}

Blas::~Blas() {
  if (handle_) cublasDestroy(h(handle_));
}

void Blas::scores(const __half* q, int64_t nq, const __half* b, int64_t nb, int dim, float alpha, float* out,
                  int64_t ldo) {
  if (nq == 0 || nb == 0) return;
  const float beta = 0.0f;
  KNN_CUBLAS(cublasGemmEx(h(handle_), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(nb), static_cast<int>(nq), dim,
                          &alpha, b, CUDA_R_16F, dim, q, CUDA_R_16F, dim, &beta, out, CUDA_R_32F,
                          static_cast<int>(ldo), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void Blas::scoresBatched(const __half* const* q, const __half* const* b, float* const* out, int nq, int nb,
                         int dim, float alpha, int batch) {
  if (batch == 0) return;
  const float beta = 0.0f;
  KNN_CUBLAS(cublasGemmBatchedEx(h(handle_), CUBLAS_OP_T, CUBLAS_OP_N, nb, nq, dim, &alpha,
                                 reinterpret_cast<const void* const*>(b), CUDA_R_16F, dim,
                                 reinterpret_cast<const void* const*>(q), CUDA_R_16F, dim, &beta,
                                 reinterpret_cast<void* const*>(out), CUDA_R_32F, nb, batch, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
}

}  // namespace knn::gpu
