// What a GPU build needs besides its data, kept warm per device for the life of the process (warm.cpp): the
// CUDA primary context (made current by cudaSetDevice), a stream with its cuBLAS handle, and the upload's two
// page-locked staging buffers. Creating them costs about 0.45 s per process (most of it the context and
// cublasCreate); a long-lived build worker pays it once, at start (gpuWarmUp), instead of in every job.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <mutex>

#include "blas.h"
#include "device.h"

namespace knn::gpu {

// Size of one upload staging piece (builder.cpp streams host chunks through two of them).
constexpr std::size_t kStageBytes = std::size_t(64) << 20;

struct WarmDevice;

// Makes `device` the current thread's device, or throws naming it when it does not exist.
void selectDevice(int device);

// One build's use of a device's warm resources. The GPU lease of the service gives a device to one build at a
// time; should two builds of one process still meet on a device, the second gets resources of its own (as
// before warm workers), so the cache is never shared by two builds at once. The current thread's device must be
// selected (cudaSetDevice) before making one.
class WarmLease {
 public:
  explicit WarmLease(int device);
  WarmLease(const WarmLease&) = delete;
  WarmLease& operator=(const WarmLease&) = delete;
  // Waits for the stream (a build that threw may have left copies from the staging buffers in flight), then
  // hands the resources back.
  ~WarmLease();

  cudaStream_t stream() const;
  Blas& blas() const;
  // The two reusable staging buffers of kStageBytes each.
  PinnedBuffer<unsigned char>* pinned() const;

 private:
  WarmDevice* shared_ = nullptr;              // the cache's entry, locked for this build
  std::unique_lock<std::mutex> lock_;
  std::unique_ptr<WarmDevice> own_;           // when the cache's entry is busy
};

}  // namespace knn::gpu
