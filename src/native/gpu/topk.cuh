// Warp-level sorting and top-k selection. A warp holds R*32 (key, id) pairs, element i = r*32 + lane in
// register r of that lane; every loop over r or over sorting stages is unrolled so the arrays stay in
// registers. Pairs are ordered by key, then id, so ties resolve the same way in every lane.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace knn::gpu {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr float kInf = __builtin_huge_valf();

struct ByKey {
  __device__ __forceinline__ static bool less(float ka, int ia, float kb, int ib) {
    return ka < kb || (ka == kb && ia < ib);
  }
};
// Orders by id (invalid ids last), then key: used to find duplicate ids.
struct ById {
  __device__ __forceinline__ static bool less(float ka, int ia, float kb, int ib) {
    const unsigned ua = static_cast<unsigned>(ia), ub = static_cast<unsigned>(ib);  // -1 sorts last
    return ua < ub || (ua == ub && ka < kb);
  }
};

// One bitonic stage for element pairs at distance `stride` within sequences of length `size`.
template <int R, class Order>
__device__ __forceinline__ void bitonicStage(float (&k)[R], int (&id)[R], int size, int stride) {
  const int lane = threadIdx.x & 31;
  if (stride >= 32) {
    const int rs = stride >> 5;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if ((r & rs) == 0) {
        const int r2 = r | rs;
        const bool up = ((((r << 5) | lane) & size) == 0);
        const bool swap = up ? Order::less(k[r2], id[r2], k[r], id[r]) : Order::less(k[r], id[r], k[r2], id[r2]);
        if (swap) {
          const float tk = k[r];
          k[r] = k[r2];
          k[r2] = tk;
          const int ti = id[r];
          id[r] = id[r2];
          id[r2] = ti;
        }
      }
    }
  } else {
    const bool lower = (lane & stride) == 0;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const bool up = ((((r << 5) | lane) & size) == 0);
      const float ok = __shfl_xor_sync(kFullMask, k[r], stride);
      const int oi = __shfl_xor_sync(kFullMask, id[r], stride);
      const bool keepMin = (up == lower);
      const bool take = keepMin ? Order::less(ok, oi, k[r], id[r]) : Order::less(k[r], id[r], ok, oi);
      if (take) {
        k[r] = ok;
        id[r] = oi;
      }
    }
  }
}

// Sorts the warp's R*32 pairs ascending.
template <int R, class Order = ByKey>
__device__ __forceinline__ void warpSort(float (&k)[R], int (&id)[R]) {
#pragma unroll
  for (int size = 2; size <= 32 * R; size <<= 1) {
#pragma unroll
    for (int stride = size >> 1; stride > 0; stride >>= 1) bitonicStage<R, Order>(k, id, size, stride);
  }
}

// Sorts a bitonic sequence of R*32 pairs ascending.
template <int R, class Order = ByKey>
__device__ __forceinline__ void warpMergeBitonic(float (&k)[R], int (&id)[R]) {
#pragma unroll
  for (int stride = 16 * R; stride > 0; stride >>= 1) bitonicStage<R, Order>(k, id, 32 * R, stride);
}

// The k = R*32 smallest (key, id) pairs seen by a warp, sorted ascending. Candidates are offered 32 at a
// time (one per lane); those under the current k-th key go to a 32-slot shared-memory buffer, which is
// sorted and merged into the list when full. As the list fills, the threshold rejects almost everything
// with one compare and one ballot, which is what makes scanning 1e12 candidates affordable.
template <int R>
struct WarpTopK {
  float k[R];
  int id[R];
  float* bufK;
  int* bufI;
  int count;     // warp-uniform: entries in the buffer
  float thresh;  // warp-uniform: the current k-th key (+inf until the list is full)

  __device__ __forceinline__ WarpTopK(float* bk, int* bi) : bufK(bk), bufI(bi), count(0), thresh(kInf) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      k[r] = kInf;
      id[r] = -1;
    }
  }

  __device__ __forceinline__ void load(const float* keys, const int32_t* ids) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      k[r] = keys[r * 32 + lane];
      id[r] = ids[r * 32 + lane];
    }
    thresh = __shfl_sync(kFullMask, k[R - 1], 31);
  }

  __device__ __forceinline__ void store(float* keys, int32_t* ids) {
    flush();
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      keys[r * 32 + lane] = k[r];
      ids[r * 32 + lane] = id[r];
    }
  }

  __device__ __forceinline__ void add(float key, int cid, bool valid) {
    const int lane = threadIdx.x & 31;
    bool pass = valid && key < thresh;
    unsigned mask = __ballot_sync(kFullMask, pass);
    if (mask == 0) return;
    int np = __popc(mask);
    if (count + np > 32) {
      flush();
      pass = pass && key < thresh;
      mask = __ballot_sync(kFullMask, pass);
      if (mask == 0) return;
      np = __popc(mask);
    }
    if (pass) {
      const int pos = count + __popc(mask & ((1u << lane) - 1u));
      bufK[pos] = key;
      bufI[pos] = cid;
    }
    count += np;
    if (count == 32) flush();
  }

  __device__ __forceinline__ void flush() {
    if (count == 0) return;
    const int lane = threadIdx.x & 31;
    __syncwarp();
    float ck[1] = {lane < count ? bufK[lane] : kInf};
    int ci[1] = {lane < count ? bufI[lane] : -1};
    __syncwarp();
    count = 0;
    warpSort<1>(ck, ci);
    // Batcher: min(L[i], C'[K-1-i]) with C' = candidates padded by +inf is bitonic and holds the K smallest;
    // only the last register meets real candidates.
    const float rk = __shfl_sync(kFullMask, ck[0], 31 - lane);
    const int ri = __shfl_sync(kFullMask, ci[0], 31 - lane);
    if (ByKey::less(rk, ri, k[R - 1], id[R - 1])) {
      k[R - 1] = rk;
      id[R - 1] = ri;
    }
    warpMergeBitonic<R>(k, id);
    thresh = __shfl_sync(kFullMask, k[R - 1], 31);
  }
};

}  // namespace knn::gpu
