// CAGRA graph optimisation (Ootomo et al., ICDE 2024): candidate merge, rank-based detour-count pruning,
// reverse edges and the final merge; all on the GPU.
#include <cub/cub.cuh>

#include <stdexcept>
#include <string>

#include "internal.h"
#include "topk.cuh"

namespace knn::gpu {

namespace {

constexpr int kWarps = 4;  // rows (warps) per block

struct SourceSet {
  const float* keys[8];
  const int32_t* ids[8];
  int stride[8];
  int start[9];  // prefix sums of use
  int count;
};

template <int R>
__global__ void __launch_bounds__(kWarps * 32) mergeKernel(SourceSet src, int64_t rows, int32_t* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(kWarps) + (threadIdx.x >> 5); row < rows; row += warps) {
    float k[R];
    int id[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int e = r * 32 + lane;
      k[r] = kInf;
      id[r] = -1;
      for (int s = 0; s < src.count; ++s) {
        if (e >= src.start[s] && e < src.start[s + 1]) {
          const int64_t at = row * src.stride[s] + (e - src.start[s]);
          id[r] = src.ids[s][at];
          k[r] = id[r] >= 0 ? src.keys[s][at] : kInf;
        }
      }
    }
    // Sort by id so duplicates sit side by side (nearest copy first), drop them, then sort by key.
    warpSort<R, ById>(k, id);
    bool dup[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      int prev = __shfl_up_sync(kFullMask, id[r], 1);
      const int carry = r > 0 ? __shfl_sync(kFullMask, id[r > 0 ? r - 1 : 0], 31) : -1;
      if (lane == 0) prev = carry;
      dup[r] = id[r] >= 0 && prev == id[r];
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (dup[r] || id[r] < 0) {
        k[r] = kInf;
        id[r] = -1;
      }
    }
    warpSort<R, ByKey>(k, id);
#pragma unroll
    for (int r = 0; r < R; ++r) out[row * (32 * R) + r * 32 + lane] = id[r];
  }
}

__device__ __forceinline__ unsigned slotOf(int id, int mask) {
  return (static_cast<unsigned>(id) * 2654435761u >> 7) & static_cast<unsigned>(mask);
}

// One warp per row. Shared memory per warp: the row's ids, an open-addressing table id -> rank (2W slots),
// and the detour counters.
template <int R>
__global__ void __launch_bounds__(kWarps * 32)
    pruneKernel(const int32_t* __restrict__ cand, int64_t rows, int use, int degree, int32_t* __restrict__ out) {
  constexpr int W = 32 * R;
  constexpr int T = 2 * W;
  __shared__ int tabId[kWarps][T];
  __shared__ int tabRank[kWarps][T];
  __shared__ int cnt[kWarps][W];
  __shared__ int mine[kWarps][W];
  const int lane = threadIdx.x & 31;
  const int w = threadIdx.x >> 5;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(kWarps) + w; row < rows; row += warps) {
    int c[R];
    int valid = 0;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int e = r * 32 + lane;
      c[r] = e < use ? cand[row * W + e] : -1;
      valid += __popc(__ballot_sync(kFullMask, c[r] >= 0));
      mine[w][e] = c[r];
      cnt[w][e] = 0;
    }
    for (int s = lane; s < T; s += 32) tabId[w][s] = -1;
    __syncwarp();
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (c[r] >= 0) {
        unsigned h = slotOf(c[r], T - 1);
        while (true) {
          const int old = atomicCAS(&tabId[w][h], -1, c[r]);
          if (old == -1) {
            tabRank[w][h] = r * 32 + lane;
            break;
          }
          h = (h + 1) & (T - 1);
        }
      }
    }
    __syncwarp();
    // Valid ids come first (lists are sorted, -1 last); only ranks below valid-1 can be detoured through.
    const int limit = min(valid - 1, use);
    for (int k = 0; k < valid - 1; ++k) {
      const int z = mine[w][k];
      const int32_t* zrow = cand + static_cast<int64_t>(z) * W;
      for (int p = lane; p < limit; p += 32) {
        const int y = zrow[p];
        if (y < 0) continue;
        unsigned h = slotOf(y, T - 1);
        int j = -1;
        while (true) {
          const int t = tabId[w][h];
          if (t == y) {
            j = tabRank[w][h];
            break;
          }
          if (t == -1) break;
          h = (h + 1) & (T - 1);
        }
        if (j > k && j > p) atomicAdd(&cnt[w][j], 1);
      }
    }
    __syncwarp();
    float key[R];
    int id[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int e = r * 32 + lane;
      const bool ok = e < valid;
      key[r] = ok ? static_cast<float>(cnt[w][e] * W + e) : kInf;  // exact: < 2^24
      id[r] = ok ? c[r] : -1;
    }
    warpSort<R, ByKey>(key, id);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int e = r * 32 + lane;
      if (e < degree) out[row * degree + e] = id[r];
    }
    __syncwarp();  // shared arrays are reused by the next row
  }
}

__global__ void reverseKeysKernel(const int32_t* __restrict__ pruned, int64_t rows, int degree,
                                  unsigned long long* __restrict__ keys, int32_t* __restrict__ vals,
                                  unsigned long long* __restrict__ counts) {
  const int64_t total = rows * degree;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = e / degree;
    const int r = static_cast<int>(e - x * degree);
    const int y = pruned[e];
    if (y >= 0 && y != x) {
      keys[e] = (static_cast<unsigned long long>(y) << 8) | static_cast<unsigned>(r);
      atomicAdd(&counts[y], 1ull);
    } else {
      keys[e] = static_cast<unsigned long long>(rows) << 8;  // after every real key
    }
    vals[e] = static_cast<int32_t>(x);
  }
}

__global__ void prependKernel(const int32_t* __restrict__ pruned, const int32_t* __restrict__ bridges, int count,
                              int64_t rows, int degree, int32_t* __restrict__ out, int32_t* __restrict__ reserved) {
  for (int64_t x = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; x < rows;
       x += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int32_t* row = out + x * degree;
    int pos = 0;
    auto add = [&](int y) {
      if (y < 0 || y == x || pos >= degree) return;
      for (int i = 0; i < pos; ++i)
        if (row[i] == y) return;
      row[pos++] = y;
    };
    for (int b = 0; b < count; ++b) add(bridges[x * count + b]);
    reserved[x] = pos;
    for (int r = 0; r < degree && pos < degree; ++r) add(pruned[x * degree + r]);
    for (; pos < degree; ++pos) row[pos] = -1;
  }
}

__global__ void finalMergeKernel(const int32_t* __restrict__ pruned, const int32_t* __restrict__ revVals,
                                 const unsigned long long* __restrict__ revOff,
                                 const unsigned long long* __restrict__ revCount, int64_t rows, int degree,
                                 const int32_t* __restrict__ reserved, int32_t* __restrict__ out) {
  for (int64_t x = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; x < rows;
       x += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int32_t* row = out + x * degree;
    const int32_t* pr = pruned + x * degree;
    int pos = 0;
    auto add = [&](int y) {
      if (y < 0 || y == x || pos >= degree) return;
      for (int i = 0; i < pos; ++i)
        if (row[i] == y) return;
      row[pos++] = y;
    };
    const int keep = reserved ? reserved[x] : 0;
    for (int r = 0; r < keep; ++r) add(pr[r]);
    const int half = keep + (degree - keep + 1) / 2;
    for (int r = keep; r < half; ++r) add(pr[r]);
    const unsigned long long off = revOff[x];
    const int nrev = static_cast<int>(min(revCount[x], static_cast<unsigned long long>(degree)));
    for (int t = 0; t < nrev && pos < degree; ++t) add(revVals[off + t]);
    for (int r = half; r < degree && pos < degree; ++r) add(pr[r]);
    for (; pos < degree; ++pos) row[pos] = -1;
  }
}

int gridFor(int64_t work, int threads) {
  const int64_t b = (work + threads - 1) / threads;
  return static_cast<int>(b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}

int rowGrid(int64_t rows) { return gridFor(rows, kWarps); }

}  // namespace

void mergeCandidates(const std::vector<CandidateSource>& sources, int64_t rows, int32_t* out, int width,
                     cudaStream_t stream) {
  if (sources.empty() || sources.size() > 8) throw std::logic_error("mergeCandidates: 1 to 8 sources");
  SourceSet set{};
  set.count = static_cast<int>(sources.size());
  set.start[0] = 0;
  for (std::size_t s = 0; s < sources.size(); ++s) {
    set.keys[s] = sources[s].keys;
    set.ids[s] = sources[s].ids;
    set.stride[s] = sources[s].stride;
    set.start[s + 1] = set.start[s] + sources[s].use;
  }
  if (set.start[set.count] > width) throw std::logic_error("mergeCandidates: more candidates than width");
  if (rows == 0) return;
  const int threads = kWarps * 32;
  switch (width) {
    case 32: mergeKernel<1><<<rowGrid(rows), threads, 0, stream>>>(set, rows, out); break;
    case 64: mergeKernel<2><<<rowGrid(rows), threads, 0, stream>>>(set, rows, out); break;
    case 128: mergeKernel<4><<<rowGrid(rows), threads, 0, stream>>>(set, rows, out); break;
    case 256: mergeKernel<8><<<rowGrid(rows), threads, 0, stream>>>(set, rows, out); break;
    default: throw std::logic_error("mergeCandidates: unsupported width " + std::to_string(width));
  }
  KNN_LAUNCH();
}

void detourPrune(const int32_t* cand, int64_t rows, int width, int use, int degree, int32_t* out,
                 cudaStream_t stream) {
  if (degree > width) throw std::logic_error("detourPrune: degree above the candidate width");
  if (rows == 0) return;
  const int threads = kWarps * 32;
  use = use < width ? use : width;
  switch (width) {
    case 32: pruneKernel<1><<<rowGrid(rows), threads, 0, stream>>>(cand, rows, use, degree, out); break;
    case 64: pruneKernel<2><<<rowGrid(rows), threads, 0, stream>>>(cand, rows, use, degree, out); break;
    case 128: pruneKernel<4><<<rowGrid(rows), threads, 0, stream>>>(cand, rows, use, degree, out); break;
    case 256: pruneKernel<8><<<rowGrid(rows), threads, 0, stream>>>(cand, rows, use, degree, out); break;
    default: throw std::logic_error("detourPrune: unsupported width " + std::to_string(width));
  }
  KNN_LAUNCH();
}

void prependBridges(const int32_t* pruned, const int32_t* bridges, int count, int64_t rows, int degree, int32_t* out,
                    int32_t* reserved, cudaStream_t stream) {
  if (rows == 0) return;
  prependKernel<<<gridFor(rows, 128), 128, 0, stream>>>(pruned, bridges, count, rows, degree, out, reserved);
  KNN_LAUNCH();
}

void reverseMerge(Context& ctx, const int32_t* pruned, int64_t rows, int degree, int32_t* out,
                  const int32_t* reserved) {
  if (rows == 0) return;
  const int64_t total = rows * degree;
  if (total >= (int64_t(1) << 31)) throw std::runtime_error("reverseMerge: graph too large (n * degree >= 2^31)");
  if (degree > 256) throw std::logic_error("reverseMerge: degree above 256");
  const cudaStream_t stream = ctx.stream;
  DeviceBuffer<unsigned long long> keys(ctx.mem, total, "reverse-edge keys");
  DeviceBuffer<unsigned long long> keysSorted(ctx.mem, total, "reverse-edge keys");
  DeviceBuffer<int32_t> vals(ctx.mem, total, "reverse-edge sources");
  DeviceBuffer<int32_t> valsSorted(ctx.mem, total, "reverse-edge sources");
  DeviceBuffer<unsigned long long> counts(ctx.mem, rows, "reverse-edge counts");
  DeviceBuffer<unsigned long long> offsets(ctx.mem, rows, "reverse-edge offsets");
  KNN_CUDA(cudaMemsetAsync(counts.get(), 0, counts.bytes(), stream));
  reverseKeysKernel<<<gridFor(total, 256), 256, 0, stream>>>(pruned, rows, degree, keys.get(), vals.get(),
                                                               counts.get());
  KNN_LAUNCH();
  int endBit = 8;
  while ((static_cast<unsigned long long>(rows) << 8) >> endBit) ++endBit;
  std::size_t sortBytes = 0, scanBytes = 0;
  KNN_CUDA(cub::DeviceRadixSort::SortPairs(nullptr, sortBytes, keys.get(), keysSorted.get(), vals.get(),
                                           valsSorted.get(), static_cast<int>(total), 0, endBit, stream));
  KNN_CUDA(cub::DeviceScan::ExclusiveSum(nullptr, scanBytes, counts.get(), offsets.get(), static_cast<int>(rows),
                                         stream));
  DeviceBuffer<unsigned char> temp(ctx.mem, std::max(sortBytes, scanBytes), "sort scratch");
  KNN_CUDA(cub::DeviceRadixSort::SortPairs(temp.get(), sortBytes, keys.get(), keysSorted.get(), vals.get(),
                                           valsSorted.get(), static_cast<int>(total), 0, endBit, stream));
  KNN_CUDA(cub::DeviceScan::ExclusiveSum(temp.get(), scanBytes, counts.get(), offsets.get(), static_cast<int>(rows),
                                         stream));
  finalMergeKernel<<<gridFor(rows, 128), 128, 0, stream>>>(pruned, valsSorted.get(), offsets.get(), counts.get(), rows,
                                                           degree, reserved, out);
  KNN_LAUNCH();
  KNN_CUDA(cudaStreamSynchronize(stream));  // scratch buffers are freed on return
}

}  // namespace knn::gpu
