#include "vector_batches.h"

#include <faiss/utils/fp16.h>

#include <cstring>

namespace knn::cpu {

std::size_t storedBytesPerVector(DataType type, int dimension) {
  const auto d = static_cast<std::size_t>(dimension);
  switch (type) {
    case DataType::Float32: return 4 * d;
    case DataType::Float16: return 2 * d;
    case DataType::Int8: return d;
    case DataType::Binary: return d / 8;
  }
  return 0;
}

int64_t batchSize(int64_t count, std::size_t faissBytesPerVector) {
  const int64_t byProgress = std::max(kMinBatch, (count + kTargetBatches - 1) / kTargetBatches);
  const auto byMemory = static_cast<int64_t>(std::max<std::size_t>(1, kStagingBytes / faissBytesPerVector));
  return std::max<int64_t>(1, std::min({byProgress, byMemory, count}));
}

FloatBatches::FloatBatches(const BuildOptions& options)
    : type_(options.dataType),
      dimension_(static_cast<std::size_t>(options.dimension)),
      cursor_(options.chunks, storedBytesPerVector(options.dataType, options.dimension)) {}

const float* FloatBatches::next(int64_t count) {
  const float* direct = nullptr;
  int64_t filled = 0;
  cursor_.take(count, [&](const uint8_t* data, int64_t vectors) {
    if (type_ == DataType::Float32 && vectors == count) {
      direct = reinterpret_cast<const float*>(data);  // typed arrays are aligned to their element size
      return;
    }
    // Sized lazily: float data needs the buffer only for a batch that crosses a chunk boundary.
    staging_.resize(static_cast<std::size_t>(count) * dimension_);
    convertRun(data, vectors, staging_.data() + static_cast<std::size_t>(filled) * dimension_);
    filled += vectors;
  });
  return direct != nullptr ? direct : staging_.data();
}

void FloatBatches::convertRun(const uint8_t* data, int64_t vectors, float* out) const {
  const std::size_t n = static_cast<std::size_t>(vectors) * dimension_;
  switch (type_) {
    case DataType::Float32:
      std::memcpy(out, data, n * sizeof(float));
      return;
    case DataType::Float16: {
      const auto* h = reinterpret_cast<const uint16_t*>(data);
      for (std::size_t i = 0; i < n; i++) out[i] = faiss::decode_fp16(h[i]);  // exact: fp16 embeds in fp32
      return;
    }
    case DataType::Int8: {
      const auto* b = reinterpret_cast<const int8_t*>(data);
      for (std::size_t i = 0; i < n; i++) out[i] = static_cast<float>(b[i]);
      return;
    }
    case DataType::Binary:
      throw std::logic_error("binary vectors are not converted to float");
  }
}

BinaryBatches::BinaryBatches(const BuildOptions& options)
    : codeBytes_(storedBytesPerVector(DataType::Binary, options.dimension)),
      cursor_(options.chunks, codeBytes_) {}

const uint8_t* BinaryBatches::next(int64_t count) {
  const uint8_t* direct = nullptr;
  int64_t filled = 0;
  cursor_.take(count, [&](const uint8_t* data, int64_t vectors) {
    if (vectors == count) {
      direct = data;
      return;
    }
    staging_.resize(static_cast<std::size_t>(count) * codeBytes_);
    std::memcpy(staging_.data() + static_cast<std::size_t>(filled) * codeBytes_, data,
                static_cast<std::size_t>(vectors) * codeBytes_);
    filled += vectors;
  });
  return direct != nullptr ? direct : staging_.data();
}

}  // namespace knn::cpu
