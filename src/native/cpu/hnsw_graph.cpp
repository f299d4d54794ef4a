#include "hnsw_graph.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace knn::cpu {

namespace {

// Faiss keeps a node's level-0 links first in its slice: neighbors[offsets[i], offsets[i] + 2M).
// offsets[i] >= i * 2M, so copying forward in node order never overwrites links not yet moved.
void keepLevelZeroOnly(faiss::HNSW& hnsw, GraphResult& g) {
  const std::size_t n = hnsw.levels.size();
  const auto slots = static_cast<std::size_t>(hnsw.nb_neighbors(0));
  for (std::size_t i = 0; i < n; i++) {
    const std::size_t from = hnsw.offsets[i];
    if (from != i * slots) std::copy_n(g.neighbors.begin() + from, slots, g.neighbors.begin() + i * slots);
  }
  // The tail (upper levels, about 1/(M-1) of the array) stays allocated until JS frees the array: no copy.
  g.neighbors.resize(n * slots);
  g.levels.clear();
  g.entryPoint = -1;
  g.maxLevel = -1;
}

}  // namespace

GraphResult takeGraph(faiss::HNSW& hnsw, int m, bool hierarchical) {
  if (hnsw.nb_neighbors(0) != 2 * m) throw std::logic_error("Faiss HNSW level 0 does not hold 2*M links");
  GraphResult g;
  g.M = m;
  g.entryPoint = hnsw.entry_point;
  g.maxLevel = hnsw.max_level;
  g.neighbors = std::move(hnsw.neighbors);
  if (hierarchical) {
    g.levels = std::move(hnsw.levels);
  } else {
    keepLevelZeroOnly(hnsw, g);
  }
  g.assignProbas = std::move(hnsw.assign_probas);
  g.cumNeighborPerLevel = std::move(hnsw.cum_nneighbor_per_level);
  return g;
}

}  // namespace knn::cpu
