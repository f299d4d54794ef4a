#include "in_place_storage.h"

#include <faiss/utils/fp16.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace knn::cpu {

namespace {

Element elementOf(DataType t) {
  switch (t) {
    case DataType::Float32: return Element::Float32;
    case DataType::Float16: return Element::Float16;
    case DataType::Int8: return Element::Int8;
    case DataType::Binary: break;
  }
  throw std::logic_error("binary vectors have no float storage");
}

std::size_t elementBytes(Element e) {
  return e == Element::Float32 ? 4 : e == Element::Float16 ? 2 : 1;
}

class InPlaceDistance final : public faiss::DistanceComputer {
 public:
  explicit InPlaceDistance(const InPlaceStorage& storage)
      : storage_(storage), kernels_(storage.kernels()), d_(static_cast<std::size_t>(storage.d)) {}

  void set_query(const float* x) override { query_ = x; }
  float operator()(idx_t i) override { return kernels_.query(query_, storage_.vector(i), d_); }
  float symmetric_dis(idx_t i, idx_t j) override {
    return kernels_.pair(storage_.vector(i), storage_.vector(j), d_);
  }

 private:
  const InPlaceStorage& storage_;
  Kernels kernels_;
  std::size_t d_;
  const float* query_ = nullptr;
};

}  // namespace

InPlaceStorage::InPlaceStorage(const BuildOptions& o)
    : faiss::Index(o.dimension, o.metric == Metric::InnerProduct ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2),
      element_(elementOf(o.dataType)),
      vectorBytes_(elementBytes(element_) * static_cast<std::size_t>(o.dimension)),
      kernels_(kernelsFor(element_, o.metric == Metric::InnerProduct)) {
  for (const VectorChunk& c : o.chunks) {
    if (c.count == 0) continue;
    capacity_ += c.count;
    chunkData_.push_back(static_cast<const uint8_t*>(c.data));
    chunkEnd_.push_back(capacity_);
  }
  if (chunkData_.size() == 1) single_ = chunkData_.front();
}

void InPlaceStorage::add(idx_t n, const float*) {
  if (n < 0 || ntotal + n > capacity_) {
    throw std::out_of_range("in-place storage: adding " + std::to_string(n) + " vectors past the " +
                            std::to_string(capacity_) + " the chunks hold");
  }
  ntotal += n;
}

void InPlaceStorage::reset() { ntotal = 0; }

void InPlaceStorage::search(idx_t, const float*, idx_t, float*, idx_t*, const faiss::SearchParameters*) const {
  throw std::logic_error("in-place storage is for building graphs, not for search");
}

void InPlaceStorage::reconstruct(idx_t key, float* out) const {
  if (key < 0 || key >= ntotal) throw std::out_of_range("in-place storage: no vector " + std::to_string(key));
  const void* v = vector(key);
  for (int j = 0; j < d; j++) {
    switch (element_) {
      case Element::Float32: out[j] = static_cast<const float*>(v)[j]; break;
      case Element::Float16: out[j] = faiss::decode_fp16(static_cast<const uint16_t*>(v)[j]); break;
      case Element::Int8: out[j] = static_cast<float>(static_cast<const int8_t*>(v)[j]); break;
    }
  }
}

faiss::DistanceComputer* InPlaceStorage::get_distance_computer() const { return new InPlaceDistance(*this); }

const void* InPlaceStorage::vectorInChunks(idx_t i) const {
  const auto c = static_cast<std::size_t>(std::upper_bound(chunkEnd_.begin(), chunkEnd_.end(), i) - chunkEnd_.begin());
  const int64_t first = c == 0 ? 0 : chunkEnd_[c - 1];
  return chunkData_[c] + static_cast<std::size_t>(i - first) * vectorBytes_;
}

}  // namespace knn::cpu
