// buildGpu: vectors in host memory -> an HNSW-layout graph, on one GPU. Stages (see gpu/README.md):
//   upload   host chunks -> pinned staging -> device, converted to fp16 rows (+ squared norms for L2)
//   knn      initial k-NN graph of intermediate degree: exact tiled GEMMs, or k-means lists (approximate)
//   ladder   each vector's 8 nearest members of every upper HNSW level set (long-range candidates)
//   prune    candidate merge + CAGRA rank-based detour pruning to the graph degree
//   reverse  reverse edges merged in (CAGRA)
//   hierarchy upper HNSW levels (only when options.hierarchical), same method on each level's node set
//   download the graph back to the host, laid out as Faiss's HNSW
// Shape: planBuild (host only: checks, degrees, k-NN path, level draw) -> deviceBudget (fail fast) -> one
// function per stage (xxxStage: Context + Plan + device views in, owning buffers out) -> layOut. buildGpu only
// chains them, times them (stageSeconds) and reports progress.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "blas.h"
#include "internal.h"
#include "knn/build.h"
#include "warm.h"
#include "../layout/levels.h"

namespace knn {

namespace gpu {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kLadderPerLevel = 8;
constexpr int kMaxLadderLevels = 8;
constexpr std::size_t kReserveBytes = std::size_t(512) << 20;  // cuBLAS/CUB workspaces, context growth

int paddedDim(const BuildOptions& o) { return (o.dimension + 7) / 8 * 8; }

std::size_t hostBytesPerVector(DataType t, int d) {
  switch (t) {
    case DataType::Float32: return 4u * d;
    case DataType::Float16: return 2u * d;
    case DataType::Int8: return static_cast<std::size_t>(d);
    case DataType::Binary: return static_cast<std::size_t>(d) / 8;
  }
  return 0;
}

// Everything decided before the device is touched (planBuild): sizes, degrees, the k-NN path, the HNSW level
// draw. The stages below only read it.
struct Plan {
  int64_t n = 0;
  int dim = 0;         // padded fp16 elements per row
  int k = 0;           // intermediate degree
  int knnWidth = 0;    // list width for k
  int degree = 0;      // final level-0 degree
  int M = 0;           // Faiss M (level 0 has 2M slots)
  int ladderLevels = 0;
  int candWidth = 0;
  int bridges = 0;     // long edges per node to its nearest foreign k-means lists
  bool approximate = false;
  Score score = Score::L2;
  IvfParams ivf;
  // The HNSW level draw: Faiss's tables for M, every node's top level (0-based), levelSets[l-1] = ids with top
  // level >= l, and which of those sets are ladder levels.
  std::vector<double> probas;
  std::vector<int32_t> cum;
  std::vector<int8_t> levels;
  int maxLevel = 0;
  std::vector<std::vector<int32_t>> levelSets;
  std::vector<std::size_t> ladderSets;
  bool debugRecall = false;    // benchmarks: print the k-NN lists' recall
  bool debugKnnStage = false;  // tests: return the raw k-NN lists instead of a graph
};

// Device bytes the build needs at its peak, apart from the score tiles (which shrink to what is left).
std::size_t estimatePeak(const Plan& p) {
  const double n = static_cast<double>(p.n);
  const double rows = n * (2.0 * p.dim + 4);
  const double knn = n * 8.0 * p.knnWidth;
  const double ladder = n * 8.0 * kLadderPerLevel * p.ladderLevels + n * 8.0 * 32 + n / 16 * (2.0 * p.dim + 8);
  const double cand = n * 4.0 * p.candWidth;
  const double reverse = n * 4.0 * p.degree * 9 + n * 4.0 * (p.bridges + 6);
  const double ivf = p.approximate ? n * 4.0 * 32 + 512.0 * (1 << 20) : 0.0;
  const double peak = rows + std::max({knn + ivf, knn + ladder + cand, cand + reverse});
  return static_cast<std::size_t>(peak) + (std::size_t(256) << 20);
}

class Stopwatch {
 public:
  Stopwatch(GraphResult& out, cudaStream_t stream) : out_(out), stream_(stream), t0_(Clock::now()) {}
  void restart() {
    KNN_CUDA(cudaStreamSynchronize(stream_));
    t0_ = Clock::now();
  }
  void lap(const char* stage) {
    KNN_CUDA(cudaStreamSynchronize(stream_));
    const auto t = Clock::now();
    out_.stageSeconds.emplace_back(stage, std::chrono::duration<double>(t - t0_).count());
    t0_ = t;
  }

 private:
  GraphResult& out_;
  cudaStream_t stream_;
  Clock::time_point t0_;
};

// Streams the host chunks through two pinned buffers: the CPU copies piece i+1 (all threads) while the GPU
// copies and converts piece i.
class Uploader {
 public:
  Uploader(Context& ctx, const BuildOptions& o, int dim) : ctx_(ctx), o_(o), dim_(dim) {}

  // Returns max |x| seen (floats; 0 for other types).
  float run(__half* out, float scale) {
    const std::size_t vecBytes = hostBytesPerVector(o_.dataType, o_.dimension);
    const std::size_t pieceVecs = std::max<std::size_t>(1, kStageBytes / vecBytes);
    const std::size_t pieceBytes = pieceVecs * vecBytes;
    const std::size_t totalBytes = static_cast<std::size_t>(o_.count) * vecBytes;
    const std::size_t stage = std::min(pieceBytes, totalBytes);
    // The warm staging buffers (warm.h) when the context has them, else buffers of this build's own.
    unsigned char* pinned[2] = {nullptr, nullptr};
    std::unique_ptr<PinnedBuffer<unsigned char>> own[2];
    for (int i = 0; i < 2; ++i) {
      if (ctx_.pinned && ctx_.pinned[i].size() >= stage) {
        pinned[i] = ctx_.pinned[i].get();
      } else {
        own[i] = std::make_unique<PinnedBuffer<unsigned char>>(stage);
        pinned[i] = own[i]->get();
      }
    }
    DeviceBuffer<unsigned char> raw[2] = {DeviceBuffer<unsigned char>(ctx_.mem, stage, "upload staging"),
                                          DeviceBuffer<unsigned char>(ctx_.mem, stage, "upload staging")};
    DeviceBuffer<unsigned> maxAbs(ctx_.mem, 1, "max |x|");
    KNN_CUDA(cudaMemsetAsync(maxAbs.get(), 0, sizeof(unsigned), ctx_.stream));
    Event done[2];
    int64_t row = 0;
    int piece = 0;
    for (const VectorChunk& c : o_.chunks) {
      const auto* src = static_cast<const unsigned char*>(c.data);
      for (int64_t v = 0; v < c.count; v += static_cast<int64_t>(pieceVecs)) {
        const int64_t cnt = std::min<int64_t>(static_cast<int64_t>(pieceVecs), c.count - v);
        const std::size_t bytes = static_cast<std::size_t>(cnt) * vecBytes;
        const int slot = piece & 1;
        if (piece >= 2) KNN_CUDA(cudaEventSynchronize(done[slot].get()));
        parallelCopy(pinned[slot], src + static_cast<std::size_t>(v) * vecBytes, bytes);
        KNN_CUDA(cudaMemcpyAsync(raw[slot].get(), pinned[slot], bytes, cudaMemcpyHostToDevice, ctx_.stream));
        convertRows(raw[slot].get(), o_.dataType, cnt, o_.dimension, dim_, scale, out + row * dim_, maxAbs.get(),
                    ctx_.stream);
        KNN_CUDA(cudaEventRecord(done[slot].get(), ctx_.stream));
        row += cnt;
        ++piece;
      }
    }
    unsigned bits = 0;
    KNN_CUDA(cudaMemcpyAsync(&bits, maxAbs.get(), sizeof bits, cudaMemcpyDeviceToHost, ctx_.stream));
    KNN_CUDA(cudaStreamSynchronize(ctx_.stream));
    float m;
    std::memcpy(&m, &bits, sizeof m);
    return m;
  }

 private:
  void parallelCopy(unsigned char* dst, const unsigned char* src, std::size_t bytes) const {
    const int threads = o_.threads > 0 ? o_.threads : omp_get_max_threads();
    const std::size_t block = std::size_t(1) << 20;
    const int64_t blocks = static_cast<int64_t>((bytes + block - 1) / block);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const std::size_t off = static_cast<std::size_t>(b) * block;
      std::memcpy(dst + off, src + off, std::min(block, bytes - off));
    }
  }

  Context& ctx_;
  const BuildOptions& o_;
  int dim_;
};

// Builds one graph of `degree` over `rows` (the base level, or an upper level's node set): candidate merge,
// detour pruning, reverse edges. Candidates come as sources (ids local to `rows`).
DeviceBuffer<int32_t> optimiseGraph(Context& ctx, const std::vector<CandidateSource>& sources, int64_t rows,
                                    int candWidth, int degree, Stopwatch* sw) {
  DeviceBuffer<int32_t> pruned(ctx.mem, static_cast<std::size_t>(rows) * degree, "pruned graph");
  {
    DeviceBuffer<int32_t> cand(ctx.mem, static_cast<std::size_t>(rows) * candWidth, "candidates");
    mergeCandidates(sources, rows, cand.get(), candWidth, ctx.stream);
    detourPrune(cand.get(), rows, candWidth, candWidth, degree, pruned.get(), ctx.stream);
    KNN_CUDA(cudaStreamSynchronize(ctx.stream));
  }
  if (sw) sw->lap("prune");
  DeviceBuffer<int32_t> graph(ctx.mem, static_cast<std::size_t>(rows) * degree, "graph");
  reverseMerge(ctx, pruned.get(), rows, degree, graph.get());
  if (sw) sw->lap("reverse");
  return graph;
}

template <typename T>
std::vector<T> download(const T* src, std::size_t count, cudaStream_t stream) {
  std::vector<T> out(count);
  if (count) KNN_CUDA(cudaMemcpyAsync(out.data(), src, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
  KNN_CUDA(cudaStreamSynchronize(stream));
  return out;
}

template <typename T>
DeviceBuffer<T> uploadVector(DeviceMemory& mem, const std::vector<T>& v, const char* what, cudaStream_t stream) {
  DeviceBuffer<T> d(mem, v.size(), what);
  if (!v.empty()) KNN_CUDA(cudaMemcpyAsync(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
  return d;
}

// Benchmarks only (tuning.debugRecall): recall of the k-NN lists against exact k-NN of 1,000 sampled rows.
void reportKnnRecall(Context& ctx, const Rows& all, Score score, const Lists& lists, int k) {
  const int64_t sample = std::min<int64_t>(all.rows, 1000);
  std::vector<int32_t> ids(sample);
  for (int64_t i = 0; i < sample; ++i) ids[i] = static_cast<int32_t>(i * (all.rows / sample));
  DeviceBuffer<int32_t> dIds(ctx.mem, sample, "sample ids");
  KNN_CUDA(cudaMemcpyAsync(dIds.get(), ids.data(), sample * 4, cudaMemcpyHostToDevice, ctx.stream));
  DeviceBuffer<__half> q(ctx.mem, static_cast<std::size_t>(sample) * all.dim, "sample rows");
  DeviceBuffer<float> qn(ctx.mem, sample, "sample norms");
  gatherRows(all.data, all.dim, dIds.get(), sample, q.get(), all.norms, all.norms ? qn.get() : nullptr, ctx.stream);
  ListsBuffer exact(ctx.mem, sample, lists.width, "exact sample lists");
  initLists(exact.view, ctx.stream);
  knnExact(ctx, Rows{q.get(), sample, all.dim, all.norms ? qn.get() : nullptr}, dIds.get(), all, nullptr, score, true,
           exact.view);
  std::vector<int32_t> e(static_cast<std::size_t>(sample) * lists.width), a(e.size());
  KNN_CUDA(cudaMemcpyAsync(e.data(), exact.view.ids, e.size() * 4, cudaMemcpyDeviceToHost, ctx.stream));
  for (int64_t i = 0; i < sample; ++i)
    KNN_CUDA(cudaMemcpyAsync(&a[i * lists.width], lists.ids + static_cast<int64_t>(ids[i]) * lists.width,
                             lists.width * 4, cudaMemcpyDeviceToHost, ctx.stream));
  KNN_CUDA(cudaStreamSynchronize(ctx.stream));
  int64_t hits = 0;
  for (int64_t i = 0; i < sample; ++i) {
    std::vector<int32_t> got(a.begin() + i * lists.width, a.begin() + i * lists.width + k);
    std::sort(got.begin(), got.end());
    for (int c = 0; c < k; ++c) hits += std::binary_search(got.begin(), got.end(), e[i * lists.width + c]);
  }
  std::fprintf(stderr, "[knn-gpu] k-NN recall@%d of the lists on %lld sampled rows: %.4f\n", k,
               static_cast<long long>(sample), static_cast<double>(hits) / (sample * k));
}


// --- the planner: checks, degrees, the k-NN path, the level draw (host only, no device calls)

void checkOptions(const BuildOptions& o) {
  const bool binary = o.dataType == DataType::Binary;
  if ((o.metric == Metric::Hamming) != binary)
    throw std::invalid_argument("hamming distance goes with binary data, and binary data with hamming only");
  if (o.dimension <= 0 || (binary && o.dimension % 8 != 0)) throw std::invalid_argument("bad dimension");
  if (o.count < 2) throw std::invalid_argument("the GPU builder needs at least 2 vectors");
  if (o.count >= (int64_t(1) << 31) - 1) throw std::invalid_argument("at most 2^31 - 2 vectors per graph");
  if (o.m < 2) throw std::invalid_argument("m must be at least 2");
}

Plan planBuild(const BuildOptions& o) {
  checkOptions(o);
  Plan plan;
  plan.n = o.count;
  plan.dim = paddedDim(o);
  const int64_t maxNeighbours = plan.n - 1;
  const int requestedDegree = o.gpu.graphDegree > 0 ? o.gpu.graphDegree : 2 * o.m;
  if (requestedDegree > 256) throw std::invalid_argument("graph degree must be at most 256");
  plan.k = o.gpu.intermediateDegree > 0 ? o.gpu.intermediateDegree : 4 * o.m;
  plan.k = static_cast<int>(std::min<int64_t>({std::max(plan.k, requestedDegree), 192, maxNeighbours}));
  plan.degree = std::min(requestedDegree, plan.k);
  plan.M = levels::gpuFileM(o);  // shared with plannedLayoutGpu (layout/levels.h)
  plan.knnWidth = listWidthFor(plan.k);
  const std::string& algo = o.gpu.knnAlgorithm;
  if (algo != "auto" && algo != "exact" && algo != "approximate")
    throw std::invalid_argument("gpu.knnAlgorithm must be auto, exact or approximate (got '" + algo + "')");
  // Exact while the all-pairs GEMM stays small (~8e12 multiply-adds: well under a second); lists beyond.
  plan.approximate = algo == "approximate" ||
                     (algo == "auto" && static_cast<double>(plan.n) * plan.n * plan.dim > 8e12);
  plan.score = o.metric == Metric::L2 ? Score::L2 : Score::IP;
  const GpuOptions::Tuning& tune = o.gpu.tuning;
  if (tune.ivfProbes < 1 || tune.ivfLists < 0) throw std::invalid_argument("gpu tuning: ivfProbes >= 1, ivfLists >= 0");
  plan.ivf.probes = tune.ivfProbes;
  plan.ivf.lists = tune.ivfLists;
  plan.ivf.seed = o.seed;

  // The level draw: the same functions as plannedLayoutGpu, so the planned file layout is the built one.
  levels::gpuLevelTables(std::max(2, plan.M), plan.probas, plan.cum);
  plan.levels = levels::gpuDrawLevels(plan.n, plan.probas, o.seed);
  for (int64_t i = 0; i < plan.n; ++i) plan.maxLevel = std::max<int>(plan.maxLevel, plan.levels[i]);
  for (int l = 1; l <= plan.maxLevel; ++l) {
    std::vector<int32_t> s;
    for (int64_t i = 0; i < plan.n; ++i)
      if (plan.levels[i] >= l) s.push_back(static_cast<int32_t>(i));
    plan.levelSets.push_back(std::move(s));
  }
  // Ladder levels: the sparse upper sets (at most 1/64 of the nodes; denser ones add nothing the k-NN lists and
  // bridges do not already give, and cost the most).
  const int maxLadder = std::clamp(tune.ladderLevels, 0, kMaxLadderLevels);
  for (std::size_t l = 0; l < plan.levelSets.size(); ++l)
    if (plan.levelSets[l].size() >= 2 && static_cast<int64_t>(plan.levelSets[l].size()) * 64 <= plan.n &&
        plan.ladderLevels < maxLadder && plan.k + (plan.ladderLevels + 1) * kLadderPerLevel <= 256) {
      plan.ladderLevels++;
      plan.ladderSets.push_back(l);
    }
  plan.bridges = std::clamp(tune.bridges, 0, 16);
  plan.candWidth = listWidthFor(plan.k + plan.ladderLevels * kLadderPerLevel);
  plan.debugRecall = tune.debugRecall;
  plan.debugKnnStage = tune.debugKnnStage;
  return plan;
}

// The device budget: the smaller of the limit and what the device has free; fails fast when the plan needs more.
std::size_t deviceBudget(const BuildOptions& o, const Plan& plan) {
  std::size_t freeBytes = 0, totalBytes = 0;
  KNN_CUDA(cudaMemGetInfo(&freeBytes, &totalBytes));
  std::size_t budget = freeBytes > kReserveBytes ? freeBytes - kReserveBytes : 0;
  if (o.gpu.memoryLimitBytes > 0) budget = std::min(budget, o.gpu.memoryLimitBytes);
  const std::size_t need = estimatePeak(plan);
  if (need > budget) {
    throw std::runtime_error("GPU memory: this build needs about " + gib(need) + " (" + std::to_string(plan.n) +
                             " vectors of " + std::to_string(o.dimension) + " dimensions) but only " + gib(budget) +
                             " may be used (limit " +
                             (o.gpu.memoryLimitBytes ? gib(o.gpu.memoryLimitBytes) : std::string("none")) + ", " +
                             gib(freeBytes) + " free on the device); use the CPU builder or a larger GPU");
  }
  return budget;
}

// --- the stages. Each takes the Context, the Plan and device views of its inputs (internal.h's Rows/Lists) and
// returns owning buffers of its outputs; an input passed as an rvalue is consumed (freed inside, where the
// original peak-memory order needs it). Progress: fraction of the stage's share via `report`.

using Report = std::function<void(double, const char*)>;

// The vectors on the device as fp16 rows (+ squared norms for L2).
struct DeviceRows {
  DeviceBuffer<__half> x;
  DeviceBuffer<float> norms;
  Rows view;
};

DeviceRows uploadStage(Context& ctx, const BuildOptions& o, const Plan& plan) {
  DeviceRows out;
  out.x = DeviceBuffer<__half>(ctx.mem, static_cast<std::size_t>(plan.n) * plan.dim, "vectors (fp16)");
  Uploader up(ctx, o, plan.dim);
  const float maxAbs = up.run(out.x.get(), 1.0f);
  // fp16 keeps 11 bits over [6e-5, 65504]: rescale by a power of two when floats sit outside a safe band.
  if (o.dataType == DataType::Float32 && maxAbs > 0.0f && (maxAbs > 16384.0f || maxAbs < 1.0f / 64)) {
    const float scale = std::ldexp(1.0f, 6 - static_cast<int>(std::ceil(std::log2(maxAbs))));
    up.run(out.x.get(), scale);
  }
  if (plan.score == Score::L2) {
    out.norms = DeviceBuffer<float>(ctx.mem, plan.n, "norms");
    rowNorms(out.x.get(), plan.n, plan.dim, out.norms.get(), ctx.stream);
  }
  out.view = Rows{out.x.get(), plan.n, plan.dim, out.norms.get()};
  return out;
}

// The initial k-NN lists (k of knnWidth columns per row) and each row's bridges (plan.bridges columns).
struct KnnGraph {
  ListsBuffer lists;
  DeviceBuffer<int32_t> bridges;
};

KnnGraph knnStage(Context& ctx, const Rows& all, const Plan& plan, const std::function<void(double)>& onProgress) {
  KnnGraph out;
  out.lists = ListsBuffer(ctx.mem, plan.n, plan.knnWidth, "k-NN lists");
  out.bridges = DeviceBuffer<int32_t>(ctx.mem, static_cast<std::size_t>(plan.n) * std::max(1, plan.bridges), "bridges");
  if (plan.approximate) {
    knnIvf(ctx, all, plan.score, plan.ivf, out.lists.view, plan.bridges ? out.bridges.get() : nullptr, plan.bridges,
           onProgress);
    return out;
  }
  initLists(out.lists.view, ctx.stream);
  knnExact(ctx, all, nullptr, all, nullptr, plan.score, true, out.lists.view,
           [&](int64_t done, int64_t total) { onProgress(static_cast<double>(done) / total); });
  if (plan.bridges > 0) {
    // The bridges come from k-means lists: one short pass over the lists of the nearest foreign centroids.
    ListsBuffer scratch(ctx.mem, plan.n, 32, "bridge scratch lists");
    IvfParams b = plan.ivf;
    b.probes = plan.bridges + 1;
    knnIvf(ctx, all, plan.score, b, scratch.view, out.bridges.get(), plan.bridges);
  }
  return out;
}

// Tests only (tuning.debugKnnStage): the raw k-NN lists as a base-level graph, to compare with an exact CPU
// reference.
GraphResult knnListsAsGraph(Context& ctx, const Plan& plan, const Lists& lists) {
  const std::vector<int32_t> ids = download(lists.ids, static_cast<std::size_t>(plan.n) * plan.knnWidth, ctx.stream);
  GraphResult result;
  result.M = (plan.k + 1) / 2;
  result.neighbors.assign(static_cast<std::size_t>(plan.n) * 2 * result.M, -1);
  for (int64_t i = 0; i < plan.n; ++i)
    std::memcpy(&result.neighbors[i * 2 * result.M], &ids[i * plan.knnWidth], sizeof(int32_t) * plan.k);
  return result;
}

// Ladder: every row's 8 nearest members of each ladder level set (long-range candidates that keep the base level
// navigable when the data is clustered; see README), as n x (8 * ladderLevels) keys and ids.
struct Ladder {
  DeviceBuffer<float> keys;
  DeviceBuffer<int32_t> ids;
};

Ladder ladderStage(Context& ctx, const DeviceRows& rows, const Plan& plan) {
  const std::size_t cells = static_cast<std::size_t>(plan.n) * kLadderPerLevel * std::max(1, plan.ladderLevels);
  Ladder out{DeviceBuffer<float>(ctx.mem, cells, "ladder"), DeviceBuffer<int32_t>(ctx.mem, cells, "ladder")};
  ListsBuffer lvl(ctx.mem, plan.n, 32, "ladder lists");
  const bool l2 = plan.score == Score::L2;
  int used = 0;
  for (const std::size_t l : plan.ladderSets) {
    const auto& set = plan.levelSets[l];
    const int64_t m = static_cast<int64_t>(set.size());
    DeviceBuffer<int32_t> ids = uploadVector(ctx.mem, set, "level ids", ctx.stream);
    DeviceBuffer<__half> members(ctx.mem, static_cast<std::size_t>(m) * plan.dim, "level vectors");
    DeviceBuffer<float> memberNorms(ctx.mem, m, "level norms");
    gatherRows(rows.x.get(), plan.dim, ids.get(), m, members.get(), rows.norms.get(), l2 ? memberNorms.get() : nullptr,
               ctx.stream);
    initLists(lvl.view, ctx.stream);
    const Rows base{members.get(), m, plan.dim, l2 ? memberNorms.get() : nullptr};
    knnExact(ctx, rows.view, nullptr, base, ids.get(), plan.score, true, lvl.view);
    const std::size_t pitch = sizeof(float) * kLadderPerLevel * plan.ladderLevels;
    KNN_CUDA(cudaMemcpy2DAsync(out.keys.get() + used * kLadderPerLevel, pitch, lvl.view.keys, 32 * sizeof(float),
                               kLadderPerLevel * sizeof(float), plan.n, cudaMemcpyDeviceToDevice, ctx.stream));
    KNN_CUDA(cudaMemcpy2DAsync(out.ids.get() + used * kLadderPerLevel, pitch, lvl.view.ids, 32 * sizeof(int32_t),
                               kLadderPerLevel * sizeof(int32_t), plan.n, cudaMemcpyDeviceToDevice, ctx.stream));
    KNN_CUDA(cudaStreamSynchronize(ctx.stream));
    ++used;
  }
  return out;
}

// Prune: the k-NN lists and the ladder merged per row, then CAGRA's detour pruning to plan.degree. Consumes the
// lists and the ladder (freed once merged, before pruning allocates).
DeviceBuffer<int32_t> pruneStage(Context& ctx, const Plan& plan, ListsBuffer&& knn, Ladder&& ladder) {
  std::vector<CandidateSource> sources;
  sources.push_back({knn.view.keys, knn.view.ids, plan.knnWidth, plan.k});
  for (int l = 0; l < plan.ladderLevels; ++l)
    sources.push_back({ladder.keys.get() + l * kLadderPerLevel, ladder.ids.get() + l * kLadderPerLevel,
                       kLadderPerLevel * plan.ladderLevels, kLadderPerLevel});
  DeviceBuffer<int32_t> pruned(ctx.mem, static_cast<std::size_t>(plan.n) * plan.degree, "pruned graph");
  DeviceBuffer<int32_t> cand(ctx.mem, static_cast<std::size_t>(plan.n) * plan.candWidth, "candidates");
  mergeCandidates(sources, plan.n, cand.get(), plan.candWidth, ctx.stream);
  KNN_CUDA(cudaStreamSynchronize(ctx.stream));
  knn = ListsBuffer();
  ladder.keys.reset();
  ladder.ids.reset();
  detourPrune(cand.get(), plan.n, plan.candWidth, plan.candWidth, plan.degree, pruned.get(), ctx.stream);
  KNN_CUDA(cudaStreamSynchronize(ctx.stream));
  return pruned;
}

// Reverse: bridges first in reserved slots, then CAGRA's reverse-edge merge. Consumes the pruned graph and the
// bridges. Bridges stay because rank-based pruning would drop them (every neighbour reaches the same far
// clusters too), yet they are what keeps separated clusters reachable.
DeviceBuffer<int32_t> reverseStage(Context& ctx, const Plan& plan, DeviceBuffer<int32_t>&& pruned,
                                   DeviceBuffer<int32_t>&& bridges) {
  const std::size_t cells = static_cast<std::size_t>(plan.n) * plan.degree;
  DeviceBuffer<int32_t> withBridges(ctx.mem, cells, "graph with bridges");
  DeviceBuffer<int32_t> reserved(ctx.mem, plan.n, "reserved slots");
  prependBridges(pruned.get(), bridges.get(), plan.bridges, plan.n, plan.degree, withBridges.get(), reserved.get(),
                 ctx.stream);
  pruned.reset();
  bridges.reset();
  DeviceBuffer<int32_t> graph(ctx.mem, cells, "graph");
  reverseMerge(ctx, withBridges.get(), plan.n, plan.degree, graph.get(), reserved.get());
  return graph;
}

// Hierarchy: each upper level's graph (k-NN among the level's nodes, pruned to M, reverse edges), as levelSets[l]
// x M global ids, -1 padded.
std::vector<std::vector<int32_t>> hierarchyStage(Context& ctx, const DeviceRows& rows, const Plan& plan) {
  std::vector<std::vector<int32_t>> upper(plan.levelSets.size());
  const bool l2 = plan.score == Score::L2;
  for (std::size_t l = 0; l < plan.levelSets.size(); ++l) {
    const auto& set = plan.levelSets[l];
    const int64_t m = static_cast<int64_t>(set.size());
    upper[l].assign(static_cast<std::size_t>(m) * plan.M, -1);
    if (m < 2) continue;
    const int kl = static_cast<int>(std::min<int64_t>(2 * plan.M, m - 1));
    const int width = listWidthFor(kl);
    const int deg = std::min(plan.M, kl);
    DeviceBuffer<int32_t> ids = uploadVector(ctx.mem, set, "level ids", ctx.stream);
    DeviceBuffer<__half> members(ctx.mem, static_cast<std::size_t>(m) * plan.dim, "level vectors");
    DeviceBuffer<float> memberNorms(ctx.mem, m, "level norms");
    gatherRows(rows.x.get(), plan.dim, ids.get(), m, members.get(), rows.norms.get(), l2 ? memberNorms.get() : nullptr,
               ctx.stream);
    const Rows lr{members.get(), m, plan.dim, l2 ? memberNorms.get() : nullptr};
    ListsBuffer lists(ctx.mem, m, width, "level lists");
    initLists(lists.view, ctx.stream);
    knnExact(ctx, lr, nullptr, lr, nullptr, plan.score, true, lists.view);
    DeviceBuffer<int32_t> g =
        optimiseGraph(ctx, {{lists.view.keys, lists.view.ids, width, kl}}, m, width, deg, nullptr);
    const std::vector<int32_t> local = download(g.get(), static_cast<std::size_t>(m) * deg, ctx.stream);
    for (int64_t i = 0; i < m; ++i)
      for (int j = 0; j < deg; ++j) {
        const int32_t v = local[i * deg + j];
        upper[l][i * plan.M + j] = v >= 0 ? set[v] : -1;
      }
  }
  return upper;
}

// Layout (host): the base graph (n x degree) and the upper levels in Faiss's HNSW order.
void layOut(const Plan& plan, bool hierarchical, const std::vector<int32_t>& base,
            const std::vector<std::vector<int32_t>>& upper, GraphResult& result) {
  result.M = plan.M;
  const int slots0 = 2 * plan.M;
  if (!hierarchical) {
    result.neighbors.assign(static_cast<std::size_t>(plan.n) * slots0, -1);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < plan.n; ++i)
      std::memcpy(&result.neighbors[i * slots0], &base[i * plan.degree], sizeof(int32_t) * plan.degree);
    result.entryPoint = -1;
    result.maxLevel = -1;
    return;
  }
  result.levels.resize(plan.n);
  std::vector<int64_t> offsets(plan.n + 1, 0);
  for (int64_t i = 0; i < plan.n; ++i) {
    result.levels[i] = plan.levels[i] + 1;
    offsets[i + 1] = offsets[i] + plan.cum.at(plan.levels[i] + 1);
  }
  result.neighbors.assign(static_cast<std::size_t>(offsets[plan.n]), -1);
  for (int64_t i = 0; i < plan.n; ++i)
    std::memcpy(&result.neighbors[offsets[i]], &base[i * plan.degree], sizeof(int32_t) * plan.degree);
  for (std::size_t l = 0; l < plan.levelSets.size(); ++l) {
    const auto& set = plan.levelSets[l];
    for (std::size_t i = 0; i < set.size(); ++i)
      std::memcpy(&result.neighbors[offsets[set[i]] + plan.cum[l + 1]], &upper[l][i * plan.M],
                  sizeof(int32_t) * plan.M);
  }
  result.entryPoint = plan.maxLevel > 0 ? plan.levelSets.back().front() : 0;
  result.maxLevel = plan.maxLevel;
  result.assignProbas = plan.probas;
  result.cumNeighborPerLevel = plan.cum;
}

}  // namespace
}  // namespace gpu

GpuInfo gpuInfo(int device) {
  GpuInfo info;
  info.compiled = true;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    info.error = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    return info;
  }
  info.deviceCount = count;
  if (count == 0) {
    info.error = "no CUDA device found";
    return info;
  }
  if (device < 0 || device >= count) {
    info.error = "GPU device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " found)";
    return info;
  }
  cudaDeviceProp prop{};
  KNN_CUDA(cudaGetDeviceProperties(&prop, device));
  info.name = prop.name;
  info.computeMajor = prop.major;
  info.computeMinor = prop.minor;
  KNN_CUDA(cudaSetDevice(device));
  KNN_CUDA(cudaMemGetInfo(&info.freeBytes, &info.totalBytes));
  return info;
}

GraphResult buildGpu(const BuildOptions& o, const ProgressFn& progress) {
  using namespace gpu;
  // Every stage boundary and every k-NN step reports progress: the place to honour a cancel (RAII frees all).
  const Report report = [&](double f, const char* stage) {
    if (cancelRequested(o)) throw BuildCancelled();
    if (progress) progress(std::min(1.0, std::max(0.0, f)), stage);
  };
  const Plan plan = planBuild(o);
  selectDevice(o.gpu.device);
  // The process's warm stream, cuBLAS handle and staging buffers for this device (created here if gpuWarmUp did
  // not run); declared before the buffers so that it outlives them.
  WarmLease warm(o.gpu.device);
  DeviceMemory mem(deviceBudget(o, plan));
  Context ctx{mem, warm.stream(), warm.blas(), o.gpu.tuning.verbose, warm.pinned()};
  GraphResult result;
  Stopwatch sw(result, warm.stream());

  report(0.0, "upload");
  DeviceRows rows = uploadStage(ctx, o, plan);
  sw.lap("upload");

  report(0.1, "knn");
  KnnGraph knn = knnStage(ctx, rows.view, plan, [&](double f) { report(0.1 + 0.4 * f, "knn"); });
  sw.lap("knn");
  if (plan.debugRecall) {
    reportKnnRecall(ctx, rows.view, plan.score, knn.lists.view, plan.k);
    sw.restart();
  }
  if (plan.debugKnnStage) {
    GraphResult lists = knnListsAsGraph(ctx, plan, knn.lists.view);
    lists.stageSeconds = std::move(result.stageSeconds);
    lists.peakDeviceBytes = mem.peak();
    return lists;
  }

  report(0.5, "ladder");
  Ladder ladder = ladderStage(ctx, rows, plan);
  sw.lap("ladder");

  report(0.6, "prune");
  DeviceBuffer<int32_t> pruned = pruneStage(ctx, plan, std::move(knn.lists), std::move(ladder));
  sw.lap("prune");

  report(0.75, "reverse");
  DeviceBuffer<int32_t> graph = reverseStage(ctx, plan, std::move(pruned), std::move(knn.bridges));
  sw.lap("reverse");

  report(0.8, o.hierarchical ? "hierarchy" : "download");
  std::vector<std::vector<int32_t>> upper(plan.levelSets.size());
  if (o.hierarchical) {
    upper = hierarchyStage(ctx, rows, plan);
    sw.lap("hierarchy");
  }

  report(0.9, "download");
  const std::vector<int32_t> base = download(graph.get(), static_cast<std::size_t>(plan.n) * plan.degree, warm.stream());
  graph.reset();
  rows = DeviceRows();
  layOut(plan, o.hierarchical, base, upper, result);
  result.peakDeviceBytes = mem.peak();
  sw.lap("download");
  report(1.0, "done");
  return result;
}

}  // namespace knn
