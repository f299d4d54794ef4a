// The caller's vectors as a Faiss storage index, read in place. IndexHNSW computes every distance through the
// storage's DistanceComputer, so with this storage the build needs no float copy of the vectors (IndexHNSWFlat
// would hold n * d * 4 bytes) and fp16 / int8 vectors are widened to float inside the distance kernels.
#pragma once

#include <faiss/Index.h>
#include <faiss/impl/DistanceComputer.h>

#include <cstdint>
#include <vector>

#include "distance_kernels.h"
#include "knn/build.h"

namespace knn::cpu {

class InPlaceStorage final : public faiss::Index {
 public:
  // The chunks must outlive the storage. Float data types only (binary uses Faiss's own binary storage).
  explicit InPlaceStorage(const BuildOptions& options);

  // The vectors are already here: add() only makes the next n of them visible, in chunk order.
  void add(idx_t n, const float* x) override;
  void reset() override;
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
  void reconstruct(idx_t key, float* out) const override;
  faiss::DistanceComputer* get_distance_computer() const override;

  // Stored vector i, in the caller's element type.
  const void* vector(idx_t i) const {
    if (single_ != nullptr) return single_ + static_cast<std::size_t>(i) * vectorBytes_;
    return vectorInChunks(i);
  }
  const Kernels& kernels() const { return kernels_; }

 private:
  const void* vectorInChunks(idx_t i) const;

  Element element_;
  std::size_t vectorBytes_;
  int64_t capacity_ = 0;
  const uint8_t* single_ = nullptr;  // the data when it is all in one chunk (the usual case)
  std::vector<const uint8_t*> chunkData_;
  std::vector<int64_t> chunkEnd_;  // one past each chunk's last vector id
  Kernels kernels_;
};

}  // namespace knn::cpu
