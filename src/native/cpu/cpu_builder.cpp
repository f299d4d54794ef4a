// The CPU graph builder's entry point: checks the options (the native door's own guard; TypeScript validates
// first), runs our HNSW construction (hnsw_builder.cpp) and records its time.
#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "hnsw_builder.h"
#include "knn/build.h"

namespace knn {

namespace {

// This layer's own invariants only. Faiss's level multiplier is 1/ln(M), so M must exceed 1; the upper bound keeps
// the per-node link arithmetic far from overflow. The m the product builds with (at most 256) is decided in
// src/builders/hnsw-params.ts and checked there before a build reaches the addon.
constexpr int kMinM = 2;
constexpr int kMaxM = 4096;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

void checkOptions(const BuildOptions& o) {
  require(o.dimension > 0, "dimension must be > 0");
  require(o.count > 0, "no vectors to build");
  require(o.count <= std::numeric_limits<int32_t>::max(), "Faiss HNSW holds at most 2^31-1 vectors (32-bit ids)");
  require(o.m >= kMinM && o.m <= kMaxM, "m must be in [2, 4096], got " + std::to_string(o.m));
  require(o.efConstruction >= 1, "ef_construction must be >= 1, got " + std::to_string(o.efConstruction));
  require(o.efSearch >= 1, "ef_search must be >= 1, got " + std::to_string(o.efSearch));
  require(o.threads >= 0, "threads must be >= 0 (0 = all cores)");
  if (o.dataType == DataType::Binary) {
    require(o.metric == Metric::Hamming, "binary vectors need the hamming space");
    require(o.dimension % 8 == 0, "binary dimension must be a multiple of 8 bits");
  } else {
    require(o.metric != Metric::Hamming, "the hamming space needs binary vectors");
  }
  int64_t inChunks = 0;
  for (const VectorChunk& c : o.chunks) {
    require(c.count >= 0 && (c.count == 0 || c.data != nullptr), "a vector chunk has no data");
    inChunks += c.count;
  }
  require(inChunks == o.count, "the vector chunks do not add up to options.count");
}

}  // namespace

GraphResult buildCpu(const BuildOptions& options, const ProgressFn& progress) {
  checkOptions(options);
  if (cancelRequested(options)) throw BuildCancelled();
  const auto start = std::chrono::steady_clock::now();
  GraphResult g = cpu::buildHnsw(options, progress);
  g.stageSeconds.emplace_back("build", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return g;
}

}  // namespace knn
