// The caller's vectors, read where they are: vector i of the build as a pointer into its chunk. One chunk (the
// usual case) is a multiply; several chunks cost one pointer per vector (8 bytes, far less than a copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "knn/build.h"

namespace knn::cpu {

// Bytes one vector takes in the caller's chunks.
inline std::size_t storedBytesPerVector(DataType type, int dimension) {
  const auto d = static_cast<std::size_t>(dimension);
  switch (type) {
    case DataType::Float32: return 4 * d;
    case DataType::Float16: return 2 * d;
    case DataType::Int8: return d;
    case DataType::Binary: return d / 8;
  }
  return 0;
}

class VectorTable {
 public:
  explicit VectorTable(const BuildOptions& o) : bytes_(storedBytesPerVector(o.dataType, o.dimension)) {
    int64_t nonEmpty = 0;
    for (const VectorChunk& c : o.chunks) nonEmpty += c.count > 0 ? 1 : 0;
    if (nonEmpty <= 1) {
      for (const VectorChunk& c : o.chunks)
        if (c.count > 0) single_ = static_cast<const uint8_t*>(c.data);
      return;
    }
    pointers_.reserve(static_cast<std::size_t>(o.count));
    for (const VectorChunk& c : o.chunks)
      for (int64_t i = 0; i < c.count; i++)
        pointers_.push_back(static_cast<const uint8_t*>(c.data) + static_cast<std::size_t>(i) * bytes_);
    if (static_cast<int64_t>(pointers_.size()) != o.count)
      throw std::invalid_argument("the vector chunks do not add up to options.count");
  }

  const uint8_t* at(int64_t i) const {
    return single_ != nullptr ? single_ + static_cast<std::size_t>(i) * bytes_ : pointers_[static_cast<std::size_t>(i)];
  }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t bytes_;
  const uint8_t* single_ = nullptr;
  std::vector<const uint8_t*> pointers_;
};

}  // namespace knn::cpu
