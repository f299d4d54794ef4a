// The per-device cache of warm.h. Entries are created on first use (gpuWarmUp, or the first build on the device)
// and never destroyed: they live as long as the process, and destroying CUDA objects from static destructors at
// exit races the runtime's own teardown.
#include "warm.h"

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>

#include "knn/build.h"

namespace knn::gpu {

struct WarmDevice {
  Stream stream;
  Blas blas{stream.get()};
  PinnedBuffer<unsigned char> pinned[2] = {PinnedBuffer<unsigned char>(kStageBytes),
                                           PinnedBuffer<unsigned char>(kStageBytes)};
  std::mutex inUse;
};

namespace {

std::mutex cacheMutex;
std::map<int, WarmDevice*>& cache() {
  static auto* entries = new std::map<int, WarmDevice*>();  // never destroyed (see the header comment)
  return *entries;
}

// The device's entry, created on first use; the calling thread's current device must be `device`.
WarmDevice& entryFor(int device) {
  std::lock_guard<std::mutex> guard(cacheMutex);
  WarmDevice*& entry = cache()[device];
  if (!entry) entry = new WarmDevice();  // throws (leaving no entry) when the device cannot be used
  return *entry;
}

}  // namespace

void selectDevice(int device) {
  int devices = 0;
  KNN_CUDA(cudaGetDeviceCount(&devices));
  if (device < 0 || device >= devices)
    throw std::invalid_argument("GPU device " + std::to_string(device) + " does not exist (" +
                                std::to_string(devices) + " found)");
  KNN_CUDA(cudaSetDevice(device));
}

WarmLease::WarmLease(int device) {
  WarmDevice& entry = entryFor(device);
  std::unique_lock<std::mutex> lock(entry.inUse, std::try_to_lock);
  if (lock.owns_lock()) {
    shared_ = &entry;
    lock_ = std::move(lock);
  } else {
    own_ = std::make_unique<WarmDevice>();
  }
}

WarmLease::~WarmLease() { cudaStreamSynchronize(stream()); }  // errors here are the build's, already reported

cudaStream_t WarmLease::stream() const { return (shared_ ? shared_ : own_.get())->stream.get(); }
Blas& WarmLease::blas() const { return (shared_ ? shared_ : own_.get())->blas; }
PinnedBuffer<unsigned char>* WarmLease::pinned() const { return (shared_ ? shared_ : own_.get())->pinned; }

}  // namespace knn::gpu

namespace knn {

double gpuWarmUp(int device) {
  using namespace gpu;
  const auto t0 = std::chrono::steady_clock::now();
  selectDevice(device);
  KNN_CUDA(cudaFree(nullptr));  // creates the primary context now, not inside the first build
  WarmLease lease(device);
  // One tiny GEMM: cuBLAS loads its kernels and heuristics on first use, not in cublasCreate.
  DeviceMemory mem(std::size_t(1) << 20);
  DeviceBuffer<__half> x(mem, 64, "warm-up rows");
  DeviceBuffer<float> out(mem, 64, "warm-up scores");
  KNN_CUDA(cudaMemsetAsync(x.get(), 0, x.bytes(), lease.stream()));
  lease.blas().scores(x.get(), 8, x.get(), 8, 8, 1.0f, out.get(), 8);
  KNN_CUDA(cudaStreamSynchronize(lease.stream()));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace knn
