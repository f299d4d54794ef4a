// The one contract between the N-API layer (addon.cpp) and the graph builders (cpu/, gpu/).
// TypeScript validates everything before it gets here; builders may still throw std::exception
// (caught in addon.cpp and turned into a rejected promise), never abort.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace knn {

enum class DataType { Float32, Float16, Int8, Binary };
enum class Metric { L2, InnerProduct, Hamming };

// A run of whole vectors in host memory (a view into a JS typed array kept alive by the caller).
struct VectorChunk {
  const void* data = nullptr;
  std::size_t bytes = 0;
  int64_t count = 0;  // vectors in this chunk
};

struct GpuOptions {
  int device = 0;
  // Upper bound on device memory the build may allocate, in bytes (0 = what the device has free).
  std::size_t memoryLimitBytes = 0;
  // Degree of the initial k-NN graph (CAGRA's intermediate degree); 0 = 4 * m.
  int intermediateDegree = 0;
  // Degree of the final graph (neighbours per node at level 0); 0 = 2 * m... see gpu/README.md.
  int graphDegree = 0;
  // "auto" | "exact" | "approximate": how the initial k-NN graph is found.
  std::string knnAlgorithm = "auto";
  // Tuning, for benchmarks and tests only (the defaults are the product; gpu/README.md says what each does).
  // The builder reads no environment variable: everything it does is decided by these options.
  struct Tuning {
    int ivfProbes = 8;        // k-means lists each vector scans (approximate path)
    int ivfLists = 0;         // k-means lists; 0 = n / 1024
    int ladderLevels = 8;     // most ladder levels, 0..8
    int bridges = 4;          // long edges per node to the nearest foreign lists, 0..16
    bool verbose = false;     // sub-stage timings to stderr
    bool debugRecall = false; // the k-NN lists' recall on 1,000 sampled rows, to stderr
    bool debugKnnStage = false;  // return the raw k-NN lists as the graph (tests compare them with exact k-NN)
  } tuning;
};

struct BuildOptions {
  DataType dataType = DataType::Float32;
  Metric metric = Metric::L2;
  int dimension = 0;  // elements per vector (bits for Binary)
  int64_t count = 0;  // total vectors over all chunks
  std::vector<VectorChunk> chunks;
  int m = 16;
  int efConstruction = 100;
  int efSearch = 100;
  int threads = 0;            // 0 = all cores
  bool hierarchical = true;   // full multi-level HNSW (IHNf) vs base level only (IHNc/IHc2)
  uint64_t seed = 1234;
  // CPU builder: the portable distance kernels even where AVX2 ones run (tests compare both; slower).
  bool portableKernels = false;
  GpuOptions gpu;
  // Cancel flag: a 32-bit int the caller may set to non-zero from another thread (JS: Atomics.store on the
  // Int32Array options.cancel). Builders read it between steps and throw BuildCancelled; null = not cancellable.
  const int32_t* cancel = nullptr;
};

// Thrown by a builder that saw the cancel flag set. addon.cpp rejects the promise with "build cancelled".
struct BuildCancelled : std::runtime_error {
  BuildCancelled() : std::runtime_error("build cancelled") {}
};

inline bool cancelRequested(const BuildOptions& o) {
  return o.cancel != nullptr && __atomic_load_n(o.cancel, __ATOMIC_RELAXED) != 0;
}

// The graph in Faiss's HNSW layout (see shared FAISS_FORMAT.md), ready for the TypeScript writer.
struct GraphResult {
  int M = 0;                     // Faiss M: level 0 holds 2*M slots per node, upper levels M
  std::vector<int32_t> levels;   // per node: top level + 1; empty = every node on level 1 only
  std::vector<int32_t> neighbors;  // concatenated per node in Faiss offsets order, -1 padded
  int32_t entryPoint = -1;
  int32_t maxLevel = -1;
  std::vector<double> assignProbas;        // Faiss's level probabilities (empty = default for M)
  std::vector<int32_t> cumNeighborPerLevel;  // empty = default [0, 2M, 3M, ...]
  // Seconds per stage (e.g. "knn", "prune", "upload"), and peak device memory, for logs and benchmarks.
  std::vector<std::pair<std::string, double>> stageSeconds;
  std::size_t peakDeviceBytes = 0;
};

// Progress: fraction in [0, 1] of the whole build, and the stage now running.
using ProgressFn = std::function<void(double fraction, const std::string& stage)>;

GraphResult buildCpu(const BuildOptions& options, const ProgressFn& progress);

// The shape of the graph buildCpu / buildGpu will return for these options (GraphResult's M, levels and level
// tables, no links), computed on the host without building: both draw every node's level up front from
// (count, m, seed). layout/planned_layout.cpp; host code, compiled with or without CUDA.
struct GraphLayout {
  int M = 0;
  std::vector<int32_t> levels;               // as GraphResult::levels
  std::vector<double> assignProbas;          // as GraphResult::assignProbas
  std::vector<int32_t> cumNeighborPerLevel;  // as GraphResult::cumNeighborPerLevel
};
GraphLayout plannedLayoutCpu(const BuildOptions& options);
GraphLayout plannedLayoutGpu(const BuildOptions& options);

// GPU side. Built from gpu/ when CUDA and cuBLAS are present, else from gpu/gpu_unavailable.cpp.
struct GpuInfo {
  bool compiled = false;     // the addon was built with the GPU builder
  int deviceCount = 0;
  std::string name;
  std::size_t totalBytes = 0;
  std::size_t freeBytes = 0;
  int computeMajor = 0;
  int computeMinor = 0;
  std::string error;         // why no GPU is usable, when deviceCount == 0
};

GpuInfo gpuInfo(int device);
GraphResult buildGpu(const BuildOptions& options, const ProgressFn& progress);
// Makes `device` ready for builds in this process once (gpu/warm.h): its CUDA context, a stream with its cuBLAS
// handle and the upload's pinned staging buffers, kept for later builds. Returns the seconds it took (small when
// already warm); throws std::runtime_error naming the problem when the device cannot be used.
double gpuWarmUp(int device);

}  // namespace knn
