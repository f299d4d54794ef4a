// Kernel-level checks of the GPU builder against plain CPU references (run on a machine with a GPU):
//   gpu_selftest            correctness: exact k-NN (L2, IP, every list width), IVF recall, candidate merge,
//                           detour pruning, reverse-edge merge
//   gpu_selftest --perf N D exact k-NN and IVF timings on N random vectors of D dimensions
// Exit status 0 only when every check passes. Inputs are multiples of 1/64, exact in fp16, so the GPU and the
// CPU see the same numbers.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../blas.h"
#include "../internal.h"

using namespace knn::gpu;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "  ok  " : "  FAIL", what.c_str());
  if (!ok) failures++;
}

struct Data {
  int64_t n;
  int d;
  std::vector<float> x;  // n x d, exact in fp16
};

// Gaussian clusters, quantised to 1/64 steps.
Data makeData(int64_t n, int d, int clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> centres(static_cast<std::size_t>(clusters) * d);
  for (auto& c : centres) c = g(rng);
  Data data{n, d, std::vector<float>(static_cast<std::size_t>(n) * d)};
  std::uniform_int_distribution<int> pick(0, clusters - 1);
  for (int64_t i = 0; i < n; ++i) {
    const int c = pick(rng);
    for (int j = 0; j < d; ++j) {
      const float v = centres[static_cast<std::size_t>(c) * d + j] + 0.5f * g(rng);
      data.x[i * d + j] = std::round(std::clamp(v, -8.0f, 8.0f) * 64.0f) / 64.0f;
    }
  }
  return data;
}

double key(const Data& a, int64_t i, int64_t j, Score s) {
  double dot = 0, nj = 0;
  for (int t = 0; t < a.d; ++t) {
    dot += static_cast<double>(a.x[i * a.d + t]) * a.x[j * a.d + t];
    nj += static_cast<double>(a.x[j * a.d + t]) * a.x[j * a.d + t];
  }
  return s == Score::L2 ? nj - 2 * dot : -dot;
}

struct Gpu {
  explicit Gpu(std::size_t budget = std::size_t(8) << 30) : mem(budget), blas(stream.get()), ctx{mem, stream.get(), blas} {}
  DeviceMemory mem;
  Stream stream;
  Blas blas;
  Context ctx;
};

struct DeviceData {
  DeviceBuffer<__half> x;
  DeviceBuffer<float> norms;
  Rows rows;
};

DeviceData upload(Gpu& g, const Data& a) {
  DeviceData dd;
  const int dp = (a.d + 7) / 8 * 8;
  DeviceBuffer<float> raw(g.mem, a.x.size(), "raw");
  KNN_CUDA(cudaMemcpy(raw.get(), a.x.data(), a.x.size() * 4, cudaMemcpyHostToDevice));
  DeviceBuffer<unsigned> maxAbs(g.mem, 1, "max");
  dd.x = DeviceBuffer<__half>(g.mem, static_cast<std::size_t>(a.n) * dp, "x");
  dd.norms = DeviceBuffer<float>(g.mem, a.n, "norms");
  convertRows(raw.get(), knn::DataType::Float32, a.n, a.d, dp, 1.0f, dd.x.get(), maxAbs.get(), g.stream.get());
  rowNorms(dd.x.get(), a.n, dp, dd.norms.get(), g.stream.get());
  g.stream.sync();
  dd.rows = Rows{dd.x.get(), a.n, dp, dd.norms.get()};
  return dd;
}

template <typename T>
std::vector<T> fetch(const T* p, std::size_t count) {
  std::vector<T> out(count);
  // The kernels run on non-blocking streams, which a plain cudaMemcpy does not wait for: without this the copy
  // can overtake the kernel (seen when a kernel's first launch JIT-compiles PTX, or under compute-sanitizer).
  KNN_CUDA(cudaDeviceSynchronize());
  KNN_CUDA(cudaMemcpy(out.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost));
  return out;
}

// Exact k-NN of every row on the GPU vs a double-precision CPU reference: same neighbours up to ties.
void testExact(Gpu& g, const Data& a, Score s, int k) {
  DeviceData dd = upload(g, a);
  const int width = listWidthFor(k);
  ListsBuffer lists(g.mem, a.n, width, "lists");
  initLists(lists.view, g.stream.get());
  knnExact(g.ctx, dd.rows, nullptr, dd.rows, nullptr, s, true, lists.view);
  g.stream.sync();
  const auto ids = fetch(lists.view.ids, static_cast<std::size_t>(a.n) * width);
  const auto keys = fetch(lists.view.keys, static_cast<std::size_t>(a.n) * width);
  int64_t wrong = 0, badOrder = 0, badIds = 0;
  std::vector<std::pair<double, int64_t>> ref(a.n);
  for (int64_t i = 0; i < a.n; ++i) {
    for (int64_t j = 0; j < a.n; ++j) ref[j] = {j == i ? 1e300 : key(a, i, j, s), j};
    std::nth_element(ref.begin(), ref.begin() + (k - 1), ref.end());
    const double kth = ref[k - 1].first;
    std::vector<int> seen;
    for (int c = 0; c < k; ++c) {
      const int id = ids[i * width + c];
      if (id < 0 || id >= a.n || id == i || std::count(seen.begin(), seen.end(), id)) {
        badIds++;
        continue;
      }
      seen.push_back(id);
      if (c > 0 && keys[i * width + c] < keys[i * width + c - 1]) badOrder++;
      const double tol = 1e-3 * (1.0 + std::fabs(kth));
      if (key(a, i, id, s) > kth + tol) wrong++;
      if (std::fabs(key(a, i, id, s) - keys[i * width + c]) > tol) wrong++;
    }
  }
  check(badIds == 0 && badOrder == 0 && wrong == 0,
        "exact k-NN " + std::string(s == Score::L2 ? "L2" : "IP") + " n=" + std::to_string(a.n) +
            " d=" + std::to_string(a.d) + " k=" + std::to_string(k) + " (bad ids " + std::to_string(badIds) +
            ", order " + std::to_string(badOrder) + ", wrong " + std::to_string(wrong) + ")");
}

// IVF k-NN vs exact k-NN on a sample of rows: recall of the k lists.
void testIvf(Gpu& g, const Data& a, Score s, int k, double minRecall) {
  DeviceData dd = upload(g, a);
  const int width = listWidthFor(k);
  ListsBuffer approx(g.mem, a.n, width, "ivf lists");
  DeviceBuffer<int32_t> bridges(g.mem, static_cast<std::size_t>(a.n) * 4, "bridges");
  IvfParams p;
  const auto t0 = std::chrono::steady_clock::now();
  knnIvf(g.ctx, dd.rows, s, p, approx.view, bridges.get(), 4);
  g.stream.sync();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t sample = std::min<int64_t>(a.n, 500);
  DeviceBuffer<int32_t> sampleIds(g.mem, sample, "sample ids");
  std::vector<int32_t> hs(sample);
  for (int64_t i = 0; i < sample; ++i) hs[i] = static_cast<int32_t>(i * (a.n / sample));
  KNN_CUDA(cudaMemcpy(sampleIds.get(), hs.data(), sample * 4, cudaMemcpyHostToDevice));
  DeviceBuffer<__half> qx(g.mem, static_cast<std::size_t>(sample) * dd.rows.dim, "q");
  DeviceBuffer<float> qn(g.mem, sample, "qn");
  gatherRows(dd.rows.data, dd.rows.dim, sampleIds.get(), sample, qx.get(), dd.rows.norms, qn.get(), g.stream.get());
  ListsBuffer exact(g.mem, sample, width, "exact lists");
  initLists(exact.view, g.stream.get());
  knnExact(g.ctx, Rows{qx.get(), sample, dd.rows.dim, qn.get()}, sampleIds.get(), dd.rows, nullptr, s, true,
           exact.view);
  g.stream.sync();
  const auto ea = fetch(exact.view.ids, static_cast<std::size_t>(sample) * width);
  const auto aa = fetch(approx.view.ids, static_cast<std::size_t>(a.n) * width);
  int64_t hits = 0, dup = 0;
  for (int64_t i = 0; i < sample; ++i) {
    const int64_t row = hs[i];
    std::vector<int> got(aa.begin() + row * width, aa.begin() + row * width + k);
    std::vector<int> sorted = got;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) dup++;
    for (int c = 0; c < k; ++c)
      if (std::count(got.begin(), got.end(), ea[i * width + c])) hits++;
  }
  const double recall = static_cast<double>(hits) / (sample * k);
  char buf[160];
  std::snprintf(buf, sizeof buf, "IVF k-NN %s n=%lld d=%d k=%d: recall %.4f (>= %.2f), %.3f s, rows with duplicates %lld",
                s == Score::L2 ? "L2" : "IP", static_cast<long long>(a.n), a.d, k, recall, minRecall, secs,
                static_cast<long long>(dup));
  check(recall >= minRecall && dup == 0, buf);
}

// Candidate merge, detour pruning and reverse edges vs CPU re-implementations of the same rules.
void testGraphStages(Gpu& g, const Data& a) {
  const int k = 64, width = 64, degree = 32;
  DeviceData dd = upload(g, a);
  ListsBuffer lists(g.mem, a.n, width, "lists");
  initLists(lists.view, g.stream.get());
  knnExact(g.ctx, dd.rows, nullptr, dd.rows, nullptr, Score::L2, true, lists.view);
  // second source: entries 30..37 of each row again (duplicates) with slightly larger keys, plus 8 strangers
  const auto keys = fetch(lists.view.keys, static_cast<std::size_t>(a.n) * width);
  const auto ids = fetch(lists.view.ids, static_cast<std::size_t>(a.n) * width);
  std::vector<float> k2(a.n * 16);
  std::vector<int32_t> i2(a.n * 16);
  for (int64_t i = 0; i < a.n; ++i)
    for (int c = 0; c < 16; ++c) {
      if (c < 8) {
        i2[i * 16 + c] = ids[i * width + 30 + c];
        k2[i * 16 + c] = keys[i * width + 30 + c] + 0.5f;
      } else {
        i2[i * 16 + c] = static_cast<int32_t>((i * 7919 + c * 104729) % a.n);
        k2[i * 16 + c] = keys[i * width + 63] + static_cast<float>(c);
        if (i2[i * 16 + c] == i) i2[i * 16 + c] = -1;
      }
    }
  DeviceBuffer<float> dk2(g.mem, k2.size(), "k2");
  DeviceBuffer<int32_t> di2(g.mem, i2.size(), "i2");
  KNN_CUDA(cudaMemcpy(dk2.get(), k2.data(), k2.size() * 4, cudaMemcpyHostToDevice));
  KNN_CUDA(cudaMemcpy(di2.get(), i2.data(), i2.size() * 4, cudaMemcpyHostToDevice));
  const int candWidth = listWidthFor(k + 16);
  DeviceBuffer<int32_t> cand(g.mem, static_cast<std::size_t>(a.n) * candWidth, "cand");
  mergeCandidates({{lists.view.keys, lists.view.ids, width, k}, {dk2.get(), di2.get(), 16, 16}}, a.n, cand.get(),
                  candWidth, g.stream.get());
  const auto gc = fetch(cand.get(), static_cast<std::size_t>(a.n) * candWidth);
  int64_t mergeBad = 0;
  for (int64_t i = 0; i < a.n; ++i) {
    std::map<int, float> best;
    for (int c = 0; c < k; ++c) best[ids[i * width + c]] = keys[i * width + c];
    for (int c = 0; c < 16; ++c) {
      const int id = i2[i * 16 + c];
      if (id < 0) continue;
      auto it = best.find(id);
      if (it == best.end() || k2[i * 16 + c] < it->second) best[id] = k2[i * 16 + c];
    }
    std::vector<std::pair<float, int>> v;
    for (auto& [id, kk] : best) v.push_back({kk, id});
    std::sort(v.begin(), v.end());
    for (int c = 0; c < candWidth; ++c) {
      const int want = c < static_cast<int>(v.size()) ? v[c].second : -1;
      if (gc[i * candWidth + c] != want) mergeBad++;
    }
  }
  check(mergeBad == 0, "candidate merge (sorted, deduplicated) mismatches: " + std::to_string(mergeBad));

  DeviceBuffer<int32_t> pruned(g.mem, static_cast<std::size_t>(a.n) * degree, "pruned");
  detourPrune(cand.get(), a.n, candWidth, candWidth, degree, pruned.get(), g.stream.get());
  const auto gp = fetch(pruned.get(), static_cast<std::size_t>(a.n) * degree);
  int64_t pruneBad = 0;
  for (int64_t x = 0; x < a.n; ++x) {
    const int* row = &gc[x * candWidth];
    int valid = 0;
    while (valid < candWidth && row[valid] >= 0) valid++;
    std::map<int, int> rank;
    for (int j = 0; j < valid; ++j) rank[row[j]] = j;
    std::vector<int> cnt(valid, 0);
    for (int kk = 0; kk < valid - 1; ++kk) {
      const int* zr = &gc[static_cast<int64_t>(row[kk]) * candWidth];
      for (int p = 0; p < valid - 1; ++p) {
        if (zr[p] < 0) continue;
        auto it = rank.find(zr[p]);
        if (it != rank.end() && it->second > kk && it->second > p) cnt[it->second]++;
      }
    }
    std::vector<std::pair<int, int>> order;
    for (int j = 0; j < valid; ++j) order.push_back({cnt[j] * candWidth + j, row[j]});
    std::sort(order.begin(), order.end());
    for (int c = 0; c < degree; ++c) {
      const int want = c < valid ? order[c].second : -1;
      if (gp[x * degree + c] != want) pruneBad++;
    }
  }
  check(pruneBad == 0, "detour pruning vs CPU reference, mismatches: " + std::to_string(pruneBad));

  DeviceBuffer<int32_t> graph(g.mem, static_cast<std::size_t>(a.n) * degree, "graph");
  reverseMerge(g.ctx, pruned.get(), a.n, degree, graph.get());
  const auto gg = fetch(graph.get(), static_cast<std::size_t>(a.n) * degree);
  std::vector<std::vector<std::pair<int, int>>> rev(a.n);
  for (int64_t x = 0; x < a.n; ++x)
    for (int r = 0; r < degree; ++r) {
      const int y = gp[x * degree + r];
      if (y >= 0 && y != x) rev[y].push_back({r, static_cast<int>(x)});
    }
  int64_t revBad = 0, invariantBad = 0;
  for (int64_t x = 0; x < a.n; ++x) {
    std::sort(rev[x].begin(), rev[x].end());
    std::vector<int> out;
    auto add = [&](int y) {
      if (y < 0 || y == x || static_cast<int>(out.size()) >= degree) return;
      if (std::count(out.begin(), out.end(), y)) return;
      out.push_back(y);
    };
    const int half = (degree + 1) / 2;
    for (int r = 0; r < half; ++r) add(gp[x * degree + r]);
    for (std::size_t t = 0; t < rev[x].size() && t < static_cast<std::size_t>(degree); ++t) add(rev[x][t].second);
    for (int r = half; r < degree; ++r) add(gp[x * degree + r]);
    while (static_cast<int>(out.size()) < degree) out.push_back(-1);
    std::vector<int> seen;
    for (int c = 0; c < degree; ++c) {
      const int y = gg[x * degree + c];
      if (y != out[c]) revBad++;
      if (y == x || y >= a.n || (y >= 0 && std::count(seen.begin(), seen.end(), y))) invariantBad++;
      seen.push_back(y);
    }
    if (gg[x * degree + degree - 1] < 0 && a.n > degree + 1) invariantBad++;  // rows full where n allows
  }
  check(revBad == 0, "reverse-edge merge vs CPU reference, mismatches: " + std::to_string(revBad));
  check(invariantBad == 0, "final graph: no self, duplicate or out-of-range ids, rows full: " +
                               std::to_string(invariantBad) + " violations");
}

void perf(int64_t n, int d) {
  Gpu g(std::size_t(60) << 30);
  Data a = makeData(n, d, 1000, 7);
  DeviceData dd = upload(g, a);
  for (int algo = 0; algo < 2; ++algo) {
    ListsBuffer lists(g.mem, n, 64, "lists");
    initLists(lists.view, g.stream.get());
    g.stream.sync();
    const auto t0 = std::chrono::steady_clock::now();
    if (algo == 0)
      knnIvf(g.ctx, dd.rows, Score::L2, IvfParams{}, lists.view);
    else
      knnExact(g.ctx, dd.rows, nullptr, dd.rows, nullptr, Score::L2, true, lists.view);
    g.stream.sync();
    std::printf("perf %s k-NN n=%lld d=%d k=64: %.3f s\n", algo == 0 ? "ivf" : "exact", static_cast<long long>(n), d,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 4 && std::string(argv[1]) == "--perf") {
      perf(std::stoll(argv[2]), std::stoi(argv[3]));
      return 0;
    }
    Gpu g;
    const Data small = makeData(3000, 40, 20, 1);
    for (int k : {20, 64, 100, 200}) testExact(g, small, Score::L2, k);
    testExact(g, small, Score::IP, 64);
    const Data odd = makeData(1500, 13, 10, 2);  // padding columns, several score tiles are not needed
    testExact(g, odd, Score::L2, 32);
    testGraphStages(g, makeData(4000, 32, 30, 3));
    testIvf(g, makeData(60000, 64, 60, 4), Score::L2, 64, 0.9);
    testIvf(g, makeData(60000, 64, 60, 5), Score::IP, 64, 0.8);
    std::printf("peak device bytes %zu\n", g.mem.peak());
  } catch (const std::exception& e) {
    std::printf("  FAIL exception: %s\n", e.what());
    return 2;
  }
  std::printf(failures ? "%d check(s) failed\n" : "all GPU kernel checks passed\n", failures);
  return failures ? 1 : 0;
}
