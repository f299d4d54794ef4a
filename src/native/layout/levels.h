// The HNSW level draw of each builder, host code only (compiled into the addon with or without CUDA), so that a
// graph's shape (levels, level tables, the file's M) is known before it is built: both builders draw every
// node's level up front from (count, M, seed) and nothing else. planned_layout.cpp exposes it; the builders
// use these same functions, so the plan and the build cannot drift apart.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "knn/build.h"

namespace knn::levels {

// --- GPU builder (gpu/builder.cpp)

// The file's M follows the request's graph degree, not n: tiny sets just leave slots empty.
inline int gpuFileM(const BuildOptions& o) {
  const int requestedDegree = o.gpu.graphDegree > 0 ? o.gpu.graphDegree : 2 * o.m;
  return (requestedDegree + 1) / 2;
}

// Faiss's HNSW defaults for M: level probabilities and cumulative neighbour counts [0, 2M, 3M, ...].
inline void gpuLevelTables(int M, std::vector<double>& probas, std::vector<int32_t>& cum) {
  const double mult = 1.0 / std::log(static_cast<double>(M));
  probas.clear();
  cum.assign(1, 0);
  int nn = 0;
  for (int level = 0;; ++level) {
    const double p = std::exp(-level / mult) * (1.0 - std::exp(-1.0 / mult));
    if (p < 1e-9) break;
    probas.push_back(p);
    nn += level == 0 ? 2 * M : M;
    cum.push_back(nn);
  }
}

// Top level (0-based) of every node, drawn as Faiss's HNSW::random_level does (seeded).
inline std::vector<int8_t> gpuDrawLevels(int64_t n, const std::vector<double>& probas, uint64_t seed) {
  std::vector<int8_t> lv(static_cast<std::size_t>(n));
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  for (int64_t i = 0; i < n; ++i) {
    double f = uni(rng);
    int level = 0;
    for (; level < static_cast<int>(probas.size()) - 1; ++level) {
      if (f < probas[level]) break;
      f -= probas[level];
    }
    lv[static_cast<std::size_t>(i)] = static_cast<int8_t>(level);
  }
  return lv;
}

// --- CPU builder (cpu/hnsw_builder.cpp)

// splitmix64: a small, portable generator (the same levels on every platform and library version).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

// Faiss's HNSW::set_default_probas(M, 1 / ln M), as the CPU builder computes it.
inline void cpuLevelTables(int m, std::vector<double>& probas, std::vector<int32_t>& cum) {
  const double levelMult = 1.0 / std::log(static_cast<double>(m));
  probas.clear();
  cum.assign(1, 0);
  for (int level = 0;; level++) {
    const double proba = std::exp(-level / levelMult) * (1 - std::exp(-1 / levelMult));
    if (proba < 1e-9) break;
    probas.push_back(proba);
    cum.push_back(cum.back() + (level == 0 ? 2 * m : m));
  }
}

// Faiss's random_level(): the top level (0-based) for a uniform draw f.
inline int cpuDrawLevel(const std::vector<double>& probas, double f) {
  for (std::size_t level = 0; level < probas.size(); level++) {
    if (f < probas[level]) return static_cast<int>(level);
    f -= probas[level];
  }
  return static_cast<int>(probas.size()) - 1;
}

}  // namespace knn::levels
