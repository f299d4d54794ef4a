// plannedLayoutCpu / plannedLayoutGpu: the shape of the graph a build will return, without building it (see
// levels.h). The run-job uses it to know the index file's header + graph size before the build, so the store can
// copy the stored vectors to their final offset while the graph builds.
#include "levels.h"

namespace knn {

GraphLayout plannedLayoutCpu(const BuildOptions& o) {
  // As cpu/hnsw_builder.cpp: Random(seed), the tables for m, one uniform draw per node in id order.
  GraphLayout out;
  out.M = o.m;
  levels::cpuLevelTables(o.m, out.assignProbas, out.cumNeighborPerLevel);
  if (!o.hierarchical) return out;
  levels::Random random(o.seed);
  out.levels.resize(static_cast<std::size_t>(o.count));
  for (auto& level : out.levels) level = levels::cpuDrawLevel(out.assignProbas, random.uniform()) + 1;
  return out;
}

GraphLayout plannedLayoutGpu(const BuildOptions& o) {
  // As gpu/builder.cpp's planBuild + layOut: base level only gives no tables (Faiss's defaults for M).
  GraphLayout out;
  out.M = levels::gpuFileM(o);
  if (!o.hierarchical) return out;
  levels::gpuLevelTables(std::max(2, out.M), out.assignProbas, out.cumNeighborPerLevel);
  const std::vector<int8_t> drawn = levels::gpuDrawLevels(o.count, out.assignProbas, o.seed);
  out.levels.assign(drawn.begin(), drawn.end());
  for (auto& level : out.levels) level += 1;
  return out;
}

}  // namespace knn
