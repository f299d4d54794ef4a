// Error checks and RAII owners for the GPU builder: every CUDA/cuBLAS call is checked and throws
// std::runtime_error naming file:line, the call and the error; every allocation goes through a
// DeviceMemory budget (the build's memory limit) and is freed on every path by its owner.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

namespace knn::gpu {

[[noreturn]] inline void throwCuda(cudaError_t err, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                           cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

#define KNN_CUDA(call)                                                   \
  do {                                                                   \
    cudaError_t knn_err_ = (call);                                       \
    if (knn_err_ != cudaSuccess) ::knn::gpu::throwCuda(knn_err_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, faults at the next sync.
#define KNN_LAUNCH() KNN_CUDA(cudaGetLastError())

inline std::string gib(std::size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

// The build's device-memory budget: allocations beyond it throw a clear error instead of reaching
// cudaMalloc's out-of-memory. Tracks current and peak bytes for the result's peakDeviceBytes.
class DeviceMemory {
 public:
  explicit DeviceMemory(std::size_t limit) : limit_(limit) {}
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* allocate(std::size_t bytes, const char* what) {
    if (bytes == 0) return nullptr;
    if (current_ + bytes > limit_) {
      throw std::runtime_error(std::string("GPU memory budget exceeded allocating ") + what + " (" + gib(bytes) +
                               "): " + gib(current_) + " in use of a budget of " + gib(limit_) +
                               "; raise the GPU memory limit or build on the CPU");
    }
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // clear the error so later calls are not poisoned
      throw std::runtime_error(std::string("cudaMalloc of ") + gib(bytes) + " for " + what + " failed: " +
                               cudaGetErrorString(err) + " (" + gib(current_) + " already allocated)");
    }
    current_ += bytes;
    if (current_ > peak_) peak_ = current_;
    return p;
  }

  void release(void* p, std::size_t bytes) noexcept {
    if (!p) return;
    cudaFree(p);  // never throws: a failed free during unwinding must not terminate
    current_ -= bytes;
  }

  std::size_t limit() const { return limit_; }
  std::size_t current() const { return current_; }
  std::size_t peak() const { return peak_; }
  std::size_t available() const { return limit_ > current_ ? limit_ - current_ : 0; }

 private:
  std::size_t limit_;
  std::size_t current_ = 0;
  std::size_t peak_ = 0;
};

// A typed device array owned by a DeviceMemory budget.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceMemory& mem, std::size_t count, const char* what)
      : mem_(&mem), count_(count), ptr_(static_cast<T*>(mem.allocate(count * sizeof(T), what))) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      swap(o);
    }
    return *this;
  }
  ~DeviceBuffer() { reset(); }

  void reset() noexcept {
    if (mem_) mem_->release(ptr_, count_ * sizeof(T));
    mem_ = nullptr;
    ptr_ = nullptr;
    count_ = 0;
  }
  T* get() const { return ptr_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

 private:
  void swap(DeviceBuffer& o) noexcept {
    std::swap(mem_, o.mem_);
    std::swap(count_, o.count_);
    std::swap(ptr_, o.ptr_);
  }
  DeviceMemory* mem_ = nullptr;
  std::size_t count_ = 0;
  T* ptr_ = nullptr;
};

// Page-locked host memory for async copies.
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t count) : count_(count) {
    if (count) KNN_CUDA(cudaMallocHost(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  T* get() const { return ptr_; }
  std::size_t size() const { return count_; }

 private:
  std::size_t count_ = 0;
  T* ptr_ = nullptr;
};

class Stream {
 public:
  Stream() { KNN_CUDA(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { cudaStreamDestroy(s_); }
  cudaStream_t get() const { return s_; }
  void sync() const { KNN_CUDA(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  Event() { KNN_CUDA(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming)); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { cudaEventDestroy(e_); }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

}  // namespace knn::gpu
