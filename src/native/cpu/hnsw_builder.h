// Our HNSW construction (Malkov & Yashunin, 2018) over the caller's vectors in place, written straight into
// Faiss's HNSW layout (FAISS_FORMAT.md): the graph Faiss's IndexHNSW would build with the same M and
// ef_construction, built faster. See README.md ("The CPU builder") for the method and why.
#pragma once

#include "knn/build.h"

namespace knn::cpu {

// options must already be checked (buildCpu does). Throws BuildCancelled when options.cancel is set.
GraphResult buildHnsw(const BuildOptions& options, const ProgressFn& progress);

}  // namespace knn::cpu
