// Moves Faiss's HNSW link structure into the builders' GraphResult (FAISS_FORMAT.md layout).
#pragma once

#include <faiss/impl/HNSW.h>

#include "knn/build.h"

namespace knn::cpu {

// Takes the graph out of `hnsw` without copying its arrays (levels, neighbors, probabilities and
// cumulative counts are moved; `hnsw` is left empty). With hierarchical = false only level 0 is kept,
// compacted in place to 2*M slots per node, with every node on level 1 and no entry point.
GraphResult takeGraph(faiss::HNSW& hnsw, int m, bool hierarchical);

}  // namespace knn::cpu
