// Placeholder until the CPU builder lands (issue 5).
#include <stdexcept>

#include "knn/build.h"

namespace knn {
GraphResult buildCpu(const BuildOptions&, const ProgressFn&) {
  throw std::runtime_error("CPU builder not built yet");
}
}  // namespace knn
