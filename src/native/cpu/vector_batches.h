// Reads a build's vectors (views into the caller's typed arrays) as contiguous batches for Faiss's add().
// Float data that already lies in one chunk is handed to Faiss in place; half_float and byte data are
// converted exactly to float, one batch at a time, so the extra memory is one batch (see batchSize()).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "knn/build.h"

namespace knn::cpu {

// Upper bound on the staging buffer a batch may need (float conversion or a copy across chunks).
constexpr std::size_t kStagingBytes = std::size_t{64} << 20;
// Fewer vectors per add() leave Faiss's per-level OpenMP loops (parallel only above 100 points) idle.
constexpr int64_t kMinBatch = 1024;
// Progress granularity: about this many add() calls per build.
constexpr int64_t kTargetBatches = 100;

// Bytes one vector takes in the caller's chunks.
std::size_t storedBytesPerVector(DataType type, int dimension);

// Vectors per add() call: about 1% of the set (progress), at least kMinBatch, and at most what keeps one
// batch under kStagingBytes in the form Faiss adds (float, or packed bits for binary). A function of the
// count and the vector size only, so the graph does not depend on how the caller chunked the vectors.
int64_t batchSize(int64_t count, std::size_t faissBytesPerVector);

// Walks the chunks in order as one sequence of vectors.
class ChunkCursor {
 public:
  ChunkCursor(const std::vector<VectorChunk>& chunks, std::size_t vectorBytes)
      : chunks_(chunks), vectorBytes_(vectorBytes) {}

  // Calls visit(const uint8_t* data, int64_t vectors) for each contiguous run that makes up the next
  // `count` vectors (one run unless the batch crosses a chunk boundary).
  template <typename Visit>
  void take(int64_t count, Visit&& visit) {
    while (count > 0) {
      if (chunk_ >= chunks_.size()) throw std::out_of_range("vector chunks hold fewer vectors than options.count");
      const VectorChunk& c = chunks_[chunk_];
      const int64_t n = std::min(count, c.count - inChunk_);
      if (n > 0) {
        visit(static_cast<const uint8_t*>(c.data) + static_cast<std::size_t>(inChunk_) * vectorBytes_, n);
        inChunk_ += n;
        count -= n;
      }
      if (inChunk_ == c.count) {
        chunk_++;
        inChunk_ = 0;
      }
    }
  }

 private:
  const std::vector<VectorChunk>& chunks_;
  std::size_t vectorBytes_;
  std::size_t chunk_ = 0;
  int64_t inChunk_ = 0;
};

// Batches of float vectors for IndexHNSWFlat::add: float32 in place where possible, fp16 and int8 as their
// exact float values.
class FloatBatches {
 public:
  explicit FloatBatches(const BuildOptions& options);
  // The next `count` vectors as count * dimension floats, valid until the next call.
  const float* next(int64_t count);

 private:
  void convertRun(const uint8_t* data, int64_t vectors, float* out) const;

  DataType type_;
  std::size_t dimension_;
  ChunkCursor cursor_;
  std::vector<float> staging_;
};

// Batches of packed-bit vectors for IndexBinaryHNSW::add: in place where possible, else copied.
class BinaryBatches {
 public:
  explicit BinaryBatches(const BuildOptions& options);
  const uint8_t* next(int64_t count);

 private:
  std::size_t codeBytes_;
  ChunkCursor cursor_;
  std::vector<uint8_t> staging_;
};

}  // namespace knn::cpu
