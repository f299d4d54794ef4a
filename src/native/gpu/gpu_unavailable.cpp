// Compiled instead of the CUDA builder when no usable CUDA toolkit with cuBLAS was found at build time.
#include "knn/build.h"

#include <stdexcept>

namespace knn {

GpuInfo gpuInfo(int) {
  GpuInfo info;
  info.error = "the native addon was built without the GPU builder (no CUDA toolkit with cuBLAS at build time)";
  return info;
}

GraphResult buildGpu(const BuildOptions&, const ProgressFn&) {
  throw std::runtime_error(
      "GPU builder unavailable: the native addon was built without CUDA; rebuild on a machine with the CUDA "
      "toolkit and cuBLAS, or set BUILDER=cpu");
}

double gpuWarmUp(int) {
  throw std::runtime_error("GPU builder unavailable: the native addon was built without CUDA");
}

}  // namespace knn
