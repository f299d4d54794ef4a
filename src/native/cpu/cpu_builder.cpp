// The CPU graph builder: Faiss 1.7.3's HNSW construction (IndexHNSW, the algorithm of IndexHNSWFlat) over float
// vectors, half_float and byte on their exact float values, with L2 or inner product; IndexBinaryHNSW over packed
// bits with hamming. Vectors are added batch by batch (progress = fraction of vectors added) and the graph is
// moved out of Faiss for the TypeScript writer.
//
// Memory beyond the caller's vectors: the graph (about count * (8M + 16) bytes while building, count * (8M + 8)
// handed over), one staging batch of float queries (at most 64 MiB) and one visited table of `count` bytes per
// thread; binary adds Faiss's copy of the codes (count * dimension / 8). Float vectors are read in place
// (InPlaceStorage), never copied whole. Everything is owned by this call: nothing survives it but the result.
#include <faiss/IndexBinaryHNSW.h>
#include <faiss/IndexHNSW.h>
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "hnsw_builder.h"
#include "hnsw_graph.h"
#include "in_place_storage.h"
#include "knn/build.h"
#include "vector_batches.h"

namespace knn {

namespace {

// Faiss's level multiplier is 1/ln(M), so M must exceed 1; the upper bound only catches nonsense.
constexpr int kMinM = 2;
constexpr int kMaxM = 4096;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// The TypeScript layer validates first; this guards the native door against anything that slips through.
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

// Sets this thread's OpenMP team size for the build and restores it after. In libgomp the setting belongs to
// the calling thread (here a libuv worker), so concurrent builds on other threads keep their own.
class OmpThreads {
 public:
  explicit OmpThreads(int threads) : saved_(omp_get_max_threads()) {
    omp_set_num_threads(threads > 0 ? threads : omp_get_num_procs());
  }
  ~OmpThreads() { omp_set_num_threads(saved_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_;
};

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Faiss's HNSW starts from a fixed seed (12345); the build's seed replaces it so levels follow options.seed.
// The graph is then reproducible with one thread; with several, link order depends on thread timing.
void configure(faiss::HNSW& hnsw, const BuildOptions& o) {
  hnsw.efConstruction = o.efConstruction;
  hnsw.efSearch = o.efSearch;
  hnsw.rng = faiss::RandomGenerator(static_cast<int64_t>(o.seed));
}

// Calls add(n) for consecutive batches of `batch` vectors and reports the fraction added after each.
template <typename Add>
void addInBatches(int64_t count, int64_t batch, const ProgressFn& progress, Add&& add) {
  if (progress) progress(0.0, "add");
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(batch, count - done);
    add(n);
    done += n;
    if (progress) progress(static_cast<double>(done) / static_cast<double>(count), "add");
  }
}

// Faiss's HNSW construction over the caller's vectors in place (InPlaceStorage), not IndexHNSWFlat's float copy.
GraphResult buildFloat(const BuildOptions& o, const ProgressFn& progress) {
  cpu::InPlaceStorage storage(o);
  faiss::IndexHNSW index(&storage, o.m);
  index.own_fields = false;  // the storage lives on this stack frame
  configure(index.hnsw, o);
  cpu::FloatBatches queries(o);
  const int64_t batch = cpu::batchSize(o.count, sizeof(float) * static_cast<std::size_t>(o.dimension));
  addInBatches(o.count, batch, progress, [&](int64_t n) { index.add(n, queries.next(n)); });
  return cpu::takeGraph(index.hnsw, o.m, o.hierarchical);
}

GraphResult buildBinary(const BuildOptions& o, const ProgressFn& progress) {
  faiss::IndexBinaryHNSW index(o.dimension, o.m);
  configure(index.hnsw, o);
  cpu::BinaryBatches batches(o);
  const int64_t batch = cpu::batchSize(o.count, cpu::storedBytesPerVector(DataType::Binary, o.dimension));
  addInBatches(o.count, batch, progress, [&](int64_t n) { index.add(n, batches.next(n)); });
  return cpu::takeGraph(index.hnsw, o.m, o.hierarchical);
}

}  // namespace

GraphResult buildCpu(const BuildOptions& options, const ProgressFn& progress) {
  checkOptions(options);
  if (cancelRequested(options)) throw BuildCancelled();
  OmpThreads threads(options.threads);
  const auto start = std::chrono::steady_clock::now();
  const char* old = std::getenv("KNN_CPU_FAISS173");
  GraphResult g = old == nullptr ? cpu::buildHnsw(options, progress)
                  : options.dataType == DataType::Binary ? buildBinary(options, progress)
                                                         : buildFloat(options, progress);
  g.stageSeconds.emplace_back("build", secondsSince(start));
  return g;
}

}  // namespace knn
