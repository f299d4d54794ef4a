// Internal interface of the GPU builder: the stages that builder.cpp chains (and gpu_selftest checks one by
// one). Vectors live on the device as fp16 rows padded to a multiple of 8 elements; "keys" order candidates
// (smaller = nearer): L2 key = |y|^2 - 2 x.y (the query's own |x|^2 is left out, it does not change the
// order), inner-product key = -x.y; hamming runs as inner product on +-1 vectors.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "device.h"
#include "knn/build.h"

namespace knn::gpu {

class Blas;

// Prints "[knn-gpu] label: seconds since the last mark" when `on` (options.gpu.tuning.verbose: benchmarks and
// tuning only), after syncing `stream`.
class SubTimer {
 public:
  SubTimer(cudaStream_t stream, bool on) : stream_(stream), on_(on), t_(std::chrono::steady_clock::now()) {}
  void mark(const char* label) {
    if (!on_) return;
    cudaStreamSynchronize(stream_);
    const auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "[knn-gpu] %s: %.4f s\n", label, std::chrono::duration<double>(now - t_).count());
    t_ = now;
  }

 private:
  cudaStream_t stream_;
  bool on_;
  std::chrono::steady_clock::time_point t_;
};

enum class Score { L2, IP };

struct Context {
  DeviceMemory& mem;
  cudaStream_t stream;
  Blas& blas;
  bool verbose = false;  // sub-stage timings to stderr (SubTimer)
  // Two reusable page-locked upload staging buffers (warm.h), or null: the upload allocates its own.
  PinnedBuffer<unsigned char>* pinned = nullptr;
};

// Device rows: `rows` vectors of `dim` (padded) fp16 values; norms = squared norms (L2 only, else null).
struct Rows {
  const __half* data = nullptr;
  int64_t rows = 0;
  int dim = 0;
  const float* norms = nullptr;
};

// Per-row candidate lists on the device: rows x width (key, id), ascending, +inf / -1 padded.
struct Lists {
  float* keys = nullptr;
  int32_t* ids = nullptr;
  int64_t rows = 0;
  int width = 0;  // a power of two in [32, 256]
};

// Owning variant.
struct ListsBuffer {
  DeviceBuffer<float> keys;
  DeviceBuffer<int32_t> ids;
  Lists view{};
  ListsBuffer() = default;
  ListsBuffer(DeviceMemory& mem, int64_t rows, int width, const char* what);
};

int listWidthFor(int k);  // the power of two >= max(32, k); throws when k > 256

// --- convert.cu
// Converts `count` raw vectors (host layout of `type`, `dim` elements/bits) to fp16 rows of `dimPadded`,
// multiplying floats by `scale`; records max |x| of float input in *maxAbs (device, float bits).
void convertRows(const void* raw, knn::DataType type, int64_t count, int dim, int dimPadded, float scale,
                 __half* out, unsigned* maxAbs, cudaStream_t stream);
void rowNorms(const __half* x, int64_t rows, int dim, float* norms, cudaStream_t stream);
// dst[i] = src[idx[i]] (zeros where idx[i] < 0); norms likewise when both pointers are set.
void gatherRows(const __half* src, int dim, const int32_t* idx, int64_t count, __half* dst,
                const float* srcNorms, float* dstNorms, cudaStream_t stream);
void initLists(const Lists& lists, cudaStream_t stream);

// --- knn.cu
// Exact k nearest rows of `base` for every row of `queries` (tiled GEMM + streaming top-k, never the full
// matrix). qIds/bIds give the ids compared for self-exclusion and stored (null = row index); excludeSelf
// skips candidates whose id equals the query's. `out` must be initialised (initLists) and may already hold
// candidates (they are merged). onTile(done, total) reports progress.
void knnExact(Context& ctx, const Rows& queries, const int32_t* qIds, const Rows& base, const int32_t* bIds,
              Score score, bool excludeSelf, const Lists& out,
              const std::function<void(int64_t, int64_t)>& onTile = {});

struct IvfParams {
  int lists = 0;   // 0 = n / 1024
  int probes = 8;  // clusters searched per vector
  int trainIterations = 8;
  int samplePerList = 64;
  uint64_t seed = 1234;
};
// Approximate k-NN graph over `x` (every row's neighbours among all rows, self excluded): k-means into
// ~n/1024 lists, then every vector scans the lists of its `probes` nearest centroids with batched tensor-core
// GEMMs and the same top-k merge. Fills `out` (initialised inside). With `bridges` (n x bridgeCount, device),
// also records each vector's nearest member of its 2nd .. (bridgeCount+1)-th nearest list (-1 where none).
void knnIvf(Context& ctx, const Rows& x, Score score, const IvfParams& params, const Lists& out,
            int32_t* bridges = nullptr, int bridgeCount = 0, const std::function<void(double)>& onProgress = {});

// --- cagra.cu
// Sources of candidates merged per row (all in the same key space).
struct CandidateSource {
  const float* keys;
  const int32_t* ids;
  int stride;  // row stride
  int use;     // columns taken from each row
};
// Merges up to 8 sources per row, drops duplicate ids and -1, sorts by key; writes ids (rows x width,
// -1 padded). width = listWidthFor(sum of use).
void mergeCandidates(const std::vector<CandidateSource>& sources, int64_t rows, int32_t* out, int width,
                     cudaStream_t stream);
// CAGRA rank-based pruning: for each row's first `use` candidates (sorted nearest first), counts detours
// X->Z->Y with rank(Z in X) < rank(Y in X) and rank(Y in Z) < rank(Y in X), orders by (detours, rank) and
// keeps `degree`.
void detourPrune(const int32_t* cand, int64_t rows, int width, int use, int degree, int32_t* out,
                 cudaStream_t stream);
// Puts each row's bridges (rows x count, -1 = none) first, then the pruned row without them, up to `degree`;
// reserved[row] = bridges placed.
void prependBridges(const int32_t* pruned, const int32_t* bridges, int count, int64_t rows, int degree, int32_t* out,
                    int32_t* reserved, cudaStream_t stream);
// Adds reverse edges: final row = the row's reserved entries (reserved[row], null = none), half of the rest of the
// pruned row, then reverse edges (lowest source rank first), then the rest of the pruned row; no duplicates, no
// self, -1 padded.
void reverseMerge(Context& ctx, const int32_t* pruned, int64_t rows, int degree, int32_t* out,
                  const int32_t* reserved = nullptr);

}  // namespace knn::gpu
