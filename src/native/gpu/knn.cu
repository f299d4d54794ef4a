// The initial k-NN graph: exact (tiled GEMM + streaming warp top-k) and approximate (k-means lists scanned
// with batched GEMMs, IVF-style: each vector is compared with the members of its `probes` nearest lists).
#include <algorithm>
#include <climits>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "blas.h"
#include "internal.h"
#include "topk.cuh"

namespace knn::gpu {

namespace {

constexpr int kSelectWarps = 4;  // warps (rows) per block in the selection kernels
constexpr int kNoSelf = -2;      // an id no candidate has

// Offers 128 consecutive scores of one row (4 per lane, loads issued before the merges) to the top-k.
template <int R>
__device__ __forceinline__ void offerRun(WarpTopK<R>& top, const float* __restrict__ s, const float* __restrict__ norms,
                                         const int32_t* __restrict__ ids, int64_t idBase, int j0, int cols, int self) {
  const int lane = threadIdx.x & 31;
  float v[4];
  int id[4];
  bool ok[4];
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const int j = j0 + u * 32 + lane;
    ok[u] = j < cols;
    v[u] = ok[u] ? s[j] : kInf;
    if (ok[u] && norms) v[u] += norms[j];
    id[u] = ok[u] ? (ids ? ids[j] : static_cast<int>(idBase + j)) : -1;
    ok[u] = ok[u] && id[u] != self && id[u] >= 0;
  }
#pragma unroll
  for (int u = 0; u < 4; ++u) top.add(v[u], id[u], ok[u]);
}

// One warp per row of a score tile: merges the row's candidates into its running list.
template <int R>
__global__ void __launch_bounds__(kSelectWarps * 32)
    selectTileKernel(const float* __restrict__ S, int64_t lds, int rows, int cols, const float* __restrict__ colNorms,
                     const int32_t* __restrict__ colIds, int64_t col0, const int32_t* __restrict__ rowIds, int64_t row0,
                     bool excludeSelf, float* __restrict__ listK, int32_t* __restrict__ listI) {
  __shared__ float bufK[kSelectWarps][32];
  __shared__ int bufI[kSelectWarps][32];
  const int warp = threadIdx.x >> 5;
  const int row = blockIdx.x * kSelectWarps + warp;
  if (row >= rows) return;  // warp-uniform
  WarpTopK<R> top(bufK[warp], bufI[warp]);
  float* lk = listK + static_cast<int64_t>(row) * (32 * R);
  int32_t* li = listI + static_cast<int64_t>(row) * (32 * R);
  top.load(lk, li);
  const int self = excludeSelf ? (rowIds ? rowIds[row] : static_cast<int>(row0 + row)) : kNoSelf;
  const float* s = S + static_cast<int64_t>(row) * lds;
  for (int j0 = 0; j0 < cols; j0 += 128) offerRun<R>(top, s, colNorms, colIds, col0, j0, cols, self);
  top.store(lk, li);
}

void selectTile(int width, const float* S, int64_t lds, int rows, int cols, const float* colNorms,
                const int32_t* colIds, int64_t col0, const int32_t* rowIds, int64_t row0, bool excludeSelf,
                float* listK, int32_t* listI, cudaStream_t stream) {
  const int blocks = (rows + kSelectWarps - 1) / kSelectWarps;
  const int threads = kSelectWarps * 32;
  switch (width) {
    case 32:
      selectTileKernel<1><<<blocks, threads, 0, stream>>>(S, lds, rows, cols, colNorms, colIds, col0, rowIds, row0,
                                                           excludeSelf, listK, listI);
      break;
    case 64:
      selectTileKernel<2><<<blocks, threads, 0, stream>>>(S, lds, rows, cols, colNorms, colIds, col0, rowIds, row0,
                                                           excludeSelf, listK, listI);
      break;
    case 128:
      selectTileKernel<4><<<blocks, threads, 0, stream>>>(S, lds, rows, cols, colNorms, colIds, col0, rowIds, row0,
                                                           excludeSelf, listK, listI);
      break;
    case 256:
      selectTileKernel<8><<<blocks, threads, 0, stream>>>(S, lds, rows, cols, colNorms, colIds, col0, rowIds, row0,
                                                           excludeSelf, listK, listI);
      break;
    default:
      throw std::logic_error("selectTile: unsupported list width " + std::to_string(width));
  }
  KNN_LAUNCH();
}

// --- approximate path

constexpr int kBQ = 256;  // query rows per GEMM block
constexpr int kBD = 512;  // list rows per GEMM block

// A run of one list's queries in a batch: Qbuf rows [qRow, qRow + nq) (padded to whole kBQ blocks) against
// Dbuf rows [dRow, dRow + nd) (padded to ndb blocks of kBD); GEMM items item + qb * ndb + db.
struct IvfSegment {
  int32_t qRow, nq, dRow, nd, item, ndb;
};

// With `bridges` set (passes over foreign lists), also records each query's nearest member of the list it
// scans: bridges[q * bridgeStride] (the graph keeps these long edges; see README, "Bridges").
template <int R>
__global__ void __launch_bounds__(kSelectWarps * 32)
    ivfSelectKernel(const IvfSegment* __restrict__ segs, const int32_t* __restrict__ rowSeg, int qRows,
                    const int32_t* __restrict__ qGather, const int32_t* __restrict__ dGather,
                    const float* __restrict__ dNorms, const float* __restrict__ ws, float* __restrict__ listK,
                    int32_t* __restrict__ listI, int32_t* __restrict__ bridges, int bridgeStride) {
  __shared__ float bufK[kSelectWarps][32];
  __shared__ int bufI[kSelectWarps][32];
  const int warp = threadIdx.x >> 5;
  const int row = blockIdx.x * kSelectWarps + warp;
  if (row >= qRows) return;
  const int si = rowSeg[row];
  if (si < 0) return;  // padding row
  const IvfSegment sg = segs[si];
  const int i = row - sg.qRow;
  const int q = qGather[row];
  const int qb = i / kBQ, ri = i % kBQ;
  WarpTopK<R> top(bufK[warp], bufI[warp]);
  float* lk = listK + static_cast<int64_t>(q) * (32 * R);
  int32_t* li = listI + static_cast<int64_t>(q) * (32 * R);
  top.load(lk, li);
  const int lane = threadIdx.x & 31;
  float bestK = kInf;
  int bestI = -1;
  for (int db = 0; db < sg.ndb; ++db) {
    const float* s = ws + (static_cast<int64_t>(sg.item + qb * sg.ndb + db) * kBQ + ri) * kBD;
    const int cols = min(kBD, sg.nd - db * kBD);
    const int32_t* ids = dGather + sg.dRow + db * kBD;
    const float* nrm = dNorms ? dNorms + sg.dRow + db * kBD : nullptr;
    for (int j0 = 0; j0 < cols; j0 += 128) offerRun<R>(top, s, nrm, ids, 0, j0, cols, q);
    if (bridges) {
      for (int j = lane; j < cols; j += 32) {
        const float v = s[j] + (nrm ? nrm[j] : 0.0f);
        const int id = ids[j];
        if (id != q && ByKey::less(v, id, bestK, bestI)) {
          bestK = v;
          bestI = id;
        }
      }
    }
  }
  top.store(lk, li);
  if (bridges) {
    for (int o = 16; o > 0; o >>= 1) {
      const float ok = __shfl_xor_sync(kFullMask, bestK, o);
      const int oi = __shfl_xor_sync(kFullMask, bestI, o);
      if (ByKey::less(ok, oi, bestK, bestI)) {
        bestK = ok;
        bestI = oi;
      }
    }
    if (lane == 0) bridges[static_cast<int64_t>(q) * bridgeStride] = bestI;
  }
}

void ivfSelect(int width, const IvfSegment* segs, const int32_t* rowSeg, int qRows, const int32_t* qGather,
               const int32_t* dGather, const float* dNorms, const float* ws, float* listK, int32_t* listI,
               int32_t* bridges, int bridgeStride, cudaStream_t stream) {
  const int blocks = (qRows + kSelectWarps - 1) / kSelectWarps;
  const int threads = kSelectWarps * 32;
  switch (width) {
    case 32:
      ivfSelectKernel<1><<<blocks, threads, 0, stream>>>(segs, rowSeg, qRows, qGather, dGather, dNorms, ws, listK, listI,
                                                         bridges, bridgeStride);
      break;
    case 64:
      ivfSelectKernel<2><<<blocks, threads, 0, stream>>>(segs, rowSeg, qRows, qGather, dGather, dNorms, ws, listK, listI,
                                                         bridges, bridgeStride);
      break;
    case 128:
      ivfSelectKernel<4><<<blocks, threads, 0, stream>>>(segs, rowSeg, qRows, qGather, dGather, dNorms, ws, listK, listI,
                                                         bridges, bridgeStride);
      break;
    case 256:
      ivfSelectKernel<8><<<blocks, threads, 0, stream>>>(segs, rowSeg, qRows, qGather, dGather, dNorms, ws, listK, listI,
                                                         bridges, bridgeStride);
      break;
    default:
      throw std::logic_error("ivfSelect: unsupported list width " + std::to_string(width));
  }
  KNN_LAUNCH();
}

// k-means update: sums and counts of the rows assigned to each centroid (assignment = ids[row * stride]).
// Sums are fixed point (x * 2^16 in 64-bit integers) so that their order does not matter: the same input gives
// the same centroids, lists and graph on every run.
constexpr double kFixedScale = 65536.0;

__global__ void accumulateKernel(const __half* __restrict__ xs, int64_t rows, int dim, const int32_t* __restrict__ ids,
                                 int stride, unsigned long long* __restrict__ sums, int* __restrict__ counts) {
  const int64_t total = rows * dim;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = e / dim;
    const int col = static_cast<int>(e - row * dim);
    const int c = ids[row * stride];
    if (c < 0) continue;
    const long long v = __double2ll_rn(static_cast<double>(__half2float(xs[e])) * kFixedScale);
    atomicAdd(&sums[static_cast<int64_t>(c) * dim + col], static_cast<unsigned long long>(v));  // wraps as signed
    if (col == 0) atomicAdd(&counts[c], 1);
  }
}

// New centroids = means; an empty centroid restarts at a sample row chosen by (c, iteration).
__global__ void finalizeKernel(const unsigned long long* __restrict__ sums, const int* __restrict__ counts, int nlist,
                               int dim,
                               const __half* __restrict__ xs, int64_t rows, int iteration, __half* __restrict__ cent) {
  const int64_t total = static_cast<int64_t>(nlist) * dim;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(e / dim);
    const int col = static_cast<int>(e - static_cast<int64_t>(c) * dim);
    const int cnt = counts[c];
    if (cnt > 0) {
      const double sum = static_cast<double>(static_cast<long long>(sums[e])) / kFixedScale;
      cent[e] = __float2half_rn(static_cast<float>(sum / cnt));
    } else {
      const int64_t r = (static_cast<int64_t>(c) * 7919 + static_cast<int64_t>(iteration) * 104729 + 17) % rows;
      cent[e] = xs[r * dim + col];
    }
  }
}

int gridFor(int64_t work) {
  const int64_t b = (work + 255) / 256;
  return static_cast<int>(std::clamp<int64_t>(b, 1, 1 << 20));
}

// ns distinct row indices of [0, n) in random order (Floyd's algorithm, then a shuffle).
std::vector<int32_t> randomSample(int64_t n, int64_t ns, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> out;
  out.reserve(ns);
  if (ns >= n) {
    for (int64_t i = 0; i < n; ++i) out.push_back(static_cast<int32_t>(i));
  } else {
    std::unordered_set<int32_t> taken;
    taken.reserve(ns * 2);
    for (int64_t j = n - ns; j < n; ++j) {
      const int32_t t = static_cast<int32_t>(std::uniform_int_distribution<int64_t>(0, j)(rng));
      const int32_t pick = taken.count(t) ? static_cast<int32_t>(j) : t;
      taken.insert(pick);
      out.push_back(pick);
    }
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

template <typename T>
void upload(DeviceBuffer<T>& dst, const std::vector<T>& src, cudaStream_t stream) {
  if (!src.empty()) KNN_CUDA(cudaMemcpyAsync(dst.get(), src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
}

}  // namespace

void knnExact(Context& ctx, const Rows& q, const int32_t* qIds, const Rows& b, const int32_t* bIds, Score score,
              bool excludeSelf, const Lists& out, const std::function<void(int64_t, int64_t)>& onTile) {
  if (q.rows == 0 || b.rows == 0) return;
  if (q.dim != b.dim) throw std::logic_error("knnExact: dimension mismatch");
  if (out.rows < q.rows) throw std::logic_error("knnExact: lists too short");
  const float alpha = score == Score::L2 ? -2.0f : -1.0f;
  const float* bNorms = score == Score::L2 ? b.norms : nullptr;
  // A tile of scores of at most 1 GiB (and a quarter of what the budget has left), rows x cols.
  const int64_t tr = std::min<int64_t>(q.rows, 8192);
  const int64_t wsBudget = std::min<int64_t>(int64_t(1) << 30, static_cast<int64_t>(ctx.mem.available() / 4));
  int64_t tc = std::min<int64_t>(b.rows, std::max<int64_t>(1024, wsBudget / (tr * 4)));
  tc = std::min<int64_t>(b.rows, (tc + 127) / 128 * 128);
  DeviceBuffer<float> ws(ctx.mem, static_cast<std::size_t>(tr * tc), "k-NN score tile");
  const int64_t rowTiles = (q.rows + tr - 1) / tr;
  for (int64_t t = 0; t < rowTiles; ++t) {
    const int64_t r0 = t * tr;
    const int nr = static_cast<int>(std::min<int64_t>(tr, q.rows - r0));
    for (int64_t c0 = 0; c0 < b.rows; c0 += tc) {
      const int nc = static_cast<int>(std::min<int64_t>(tc, b.rows - c0));
      ctx.blas.scores(q.data + r0 * q.dim, nr, b.data + c0 * b.dim, nc, q.dim, alpha, ws.get(), tc);
      selectTile(out.width, ws.get(), tc, nr, nc, bNorms ? bNorms + c0 : nullptr, bIds ? bIds + c0 : nullptr, c0,
                 qIds ? qIds + r0 : nullptr, r0, excludeSelf, out.keys + r0 * out.width, out.ids + r0 * out.width,
                 ctx.stream);
    }
    if (onTile) onTile(t + 1, rowTiles);
  }
}

void knnIvf(Context& ctx, const Rows& x, Score score, const IvfParams& p, const Lists& out, int32_t* bridges,
            int bridgeCount, const std::function<void(double)>& onProgress) {
  const int64_t n = x.rows;
  const int dim = x.dim;
  const cudaStream_t stream = ctx.stream;
  int nlist = p.lists > 0 ? p.lists : static_cast<int>(std::max<int64_t>(1, n / 1024));
  nlist = static_cast<int>(std::min<int64_t>(nlist, n));
  const int probes = std::max(1, std::min(std::max(p.probes, bridges ? bridgeCount + 1 : 1), std::min(nlist, 32)));
  if (bridges) KNN_CUDA(cudaMemsetAsync(bridges, 0xff, sizeof(int32_t) * n * bridgeCount, stream));
  auto report = [&](double f) {
    if (onProgress) onProgress(f);
  };
  SubTimer timer(stream, ctx.verbose);

  // --- k-means on a sample (Lloyd; empty lists restart at sample rows)
  const int64_t ns = std::min<int64_t>(n, std::max<int64_t>(static_cast<int64_t>(nlist) * p.samplePerList, nlist));
  const std::vector<int32_t> sample = randomSample(n, ns, p.seed);
  DeviceBuffer<int32_t> dSample(ctx.mem, ns, "k-means sample ids");
  upload(dSample, sample, stream);
  DeviceBuffer<__half> xs(ctx.mem, ns * dim, "k-means sample");
  DeviceBuffer<float> xsNorm(ctx.mem, ns, "k-means sample norms");
  gatherRows(x.data, dim, dSample.get(), ns, xs.get(), nullptr, nullptr, stream);
  rowNorms(xs.get(), ns, dim, xsNorm.get(), stream);
  DeviceBuffer<__half> cent(ctx.mem, static_cast<std::size_t>(nlist) * dim, "centroids");
  DeviceBuffer<float> centNorm(ctx.mem, nlist, "centroid norms");
  DeviceBuffer<unsigned long long> sums(ctx.mem, static_cast<std::size_t>(nlist) * dim, "centroid sums");
  DeviceBuffer<int> counts(ctx.mem, nlist, "centroid counts");
  gatherRows(x.data, dim, dSample.get(), nlist, cent.get(), nullptr, nullptr, stream);
  rowNorms(cent.get(), nlist, dim, centNorm.get(), stream);
  {
    ListsBuffer assign(ctx.mem, ns, 32, "k-means assignment");
    const Rows sampleRows{xs.get(), ns, dim, xsNorm.get()};
    for (int it = 0; it < p.trainIterations; ++it) {
      initLists(assign.view, stream);
      const Rows centRows{cent.get(), nlist, dim, centNorm.get()};
      knnExact(ctx, sampleRows, nullptr, centRows, nullptr, score, false, assign.view);
      KNN_CUDA(cudaMemsetAsync(sums.get(), 0, sums.bytes(), stream));
      KNN_CUDA(cudaMemsetAsync(counts.get(), 0, counts.bytes(), stream));
      accumulateKernel<<<gridFor(ns * dim), 256, 0, stream>>>(xs.get(), ns, dim, assign.view.ids, 32, sums.get(),
                                                              counts.get());
      KNN_LAUNCH();
      finalizeKernel<<<gridFor(static_cast<int64_t>(nlist) * dim), 256, 0, stream>>>(sums.get(), counts.get(), nlist,
                                                                                     dim, xs.get(), ns, it, cent.get());
      KNN_LAUNCH();
      rowNorms(cent.get(), nlist, dim, centNorm.get(), stream);
    }
  }
  xs.reset();
  xsNorm.reset();
  sums.reset();
  counts.reset();
  timer.mark("ivf k-means");
  report(0.1);

  // --- every vector's `probes` nearest centroids (row tiles of lists of 32)
  std::vector<int32_t> hProbes(static_cast<std::size_t>(n) * probes);
  {
    const Rows centRows{cent.get(), nlist, dim, centNorm.get()};
    const int64_t tile = std::min<int64_t>(n, 262144);
    ListsBuffer near(ctx.mem, tile, 32, "centroid assignment");
    DeviceBuffer<int32_t> dProbes(ctx.mem, static_cast<std::size_t>(n) * probes, "probes");
    for (int64_t r0 = 0; r0 < n; r0 += tile) {
      const int64_t nr = std::min<int64_t>(tile, n - r0);
      initLists(near.view, stream);
      const Rows part{x.data + r0 * dim, nr, dim, x.norms ? x.norms + r0 : nullptr};
      knnExact(ctx, part, nullptr, centRows, nullptr, score, false, near.view);
      KNN_CUDA(cudaMemcpy2DAsync(dProbes.get() + r0 * probes, probes * sizeof(int32_t), near.view.ids,
                                 32 * sizeof(int32_t), probes * sizeof(int32_t), nr, cudaMemcpyDeviceToDevice, stream));
    }
    KNN_CUDA(cudaMemcpyAsync(hProbes.data(), dProbes.get(), dProbes.bytes(), cudaMemcpyDeviceToHost, stream));
    KNN_CUDA(cudaStreamSynchronize(stream));
  }
  cent.reset();
  centNorm.reset();
  timer.mark("ivf probes");
  report(0.2);

  // --- lists: members grouped by nearest centroid (ascending ids within a list)
  std::vector<int64_t> listOff(nlist + 1, 0);
  for (int64_t i = 0; i < n; ++i) listOff[hProbes[i * probes] + 1]++;
  for (int c = 0; c < nlist; ++c) listOff[c + 1] += listOff[c];
  std::vector<int32_t> listIds(n);
  {
    std::vector<int64_t> fill(listOff.begin(), listOff.end() - 1);
    for (int64_t i = 0; i < n; ++i) listIds[fill[hProbes[i * probes]]++] = static_cast<int32_t>(i);
  }
  int64_t maxList = 0;
  for (int c = 0; c < nlist; ++c) maxList = std::max(maxList, listOff[c + 1] - listOff[c]);
  if (ctx.verbose)
    std::fprintf(stderr, "[knn-gpu] ivf: %d lists, largest %lld, %d probes\n", nlist, static_cast<long long>(maxList),
                 probes);
  const int64_t maxBlocks = (maxList + kBD - 1) / kBD;

  // --- batch capacities from the budget: query rows, list rows, GEMM items (kBQ x kBD floats each)
  const int64_t rowBytes = static_cast<int64_t>(dim) * 2 + 12;  // fp16 row + gather id + norm + segment index
  const int64_t itemBytes = static_cast<int64_t>(kBQ) * kBD * 4 + 24;
  int64_t qcap = 32768, dcap = std::max<int64_t>(32768, maxBlocks * kBD), wcap = std::max<int64_t>(512, maxBlocks);
  const int64_t avail = static_cast<int64_t>(ctx.mem.available()) - (64 << 20);
  while ((qcap + dcap) * rowBytes + wcap * itemBytes > avail && (qcap > kBQ || wcap > maxBlocks)) {
    qcap = std::max<int64_t>(kBQ, qcap / 2);
    wcap = std::max<int64_t>(maxBlocks, wcap / 2);
    dcap = std::max<int64_t>(maxBlocks * kBD, dcap / 2);
  }
  if ((qcap + dcap) * rowBytes + wcap * itemBytes > avail) {
    throw std::runtime_error("GPU memory budget too small for the approximate k-NN batches (largest list " +
                             std::to_string(maxList) + " vectors); raise the GPU memory limit");
  }
  DeviceBuffer<__half> qbuf(ctx.mem, qcap * dim, "query batch");
  DeviceBuffer<__half> dbuf(ctx.mem, dcap * dim, "list batch");
  DeviceBuffer<float> dNorm(ctx.mem, dcap, "list batch norms");
  DeviceBuffer<float> ws(ctx.mem, static_cast<std::size_t>(wcap) * kBQ * kBD, "list score tiles");

  initLists(out, stream);
  std::vector<int64_t> qOff(nlist + 1);
  std::vector<int32_t> qOrder(n);
  for (int r = 0; r < probes; ++r) {
    // queries of this pass grouped by their r-th nearest list
    std::fill(qOff.begin(), qOff.end(), 0);
    int64_t nq = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t c = hProbes[i * probes + r];
      if (c >= 0) {
        qOff[c + 1]++;
        nq++;
      }
    }
    for (int c = 0; c < nlist; ++c) qOff[c + 1] += qOff[c];
    {
      std::vector<int64_t> fill(qOff.begin(), qOff.end() - 1);
      for (int64_t i = 0; i < n; ++i) {
        const int32_t c = hProbes[i * probes + r];
        if (c >= 0) qOrder[fill[c]++] = static_cast<int32_t>(i);
      }
    }
    // plan the batches of the whole pass on the host, upload once, then launch them back to back
    struct Batch {
      int64_t qStart, qRows, dStart, dRows, segStart, nseg, itemStart, items;
    };
    std::vector<Batch> batches;
    std::vector<int32_t> hQ, hRowSeg, hD;
    std::vector<IvfSegment> hSegs;
    std::vector<const __half*> hA, hB;
    std::vector<float*> hC;
    Batch cur{0, 0, 0, 0, 0, 0, 0, 0};
    auto flush = [&]() {
      if (cur.nseg > 0) batches.push_back(cur);
      cur = Batch{static_cast<int64_t>(hQ.size()), 0, static_cast<int64_t>(hD.size()), 0,
                  static_cast<int64_t>(hSegs.size()), 0, static_cast<int64_t>(hC.size()), 0};
    };
    for (int c = 0; c < nlist; ++c) {
      const int64_t cq = qOff[c + 1] - qOff[c];
      const int64_t cd = listOff[c + 1] - listOff[c];
      if (cq == 0 || cd == 0) continue;
      const int64_t ndb = (cd + kBD - 1) / kBD;
      int64_t done = 0;
      while (done < cq) {
        const int64_t roomQ = (qcap - cur.qRows) / kBQ;
        const int64_t roomW = (wcap - cur.items) / ndb;
        const bool roomD = cur.dRows + ndb * kBD <= dcap;
        const int64_t take = std::min<int64_t>({(cq - done + kBQ - 1) / kBQ, roomQ, roomW});
        if (!roomD || take <= 0) {
          if (cur.nseg == 0) throw std::logic_error("knnIvf: a list does not fit an empty batch");
          flush();
          continue;
        }
        IvfSegment sg{};
        sg.qRow = static_cast<int32_t>(cur.qRows);
        sg.nq = static_cast<int32_t>(std::min<int64_t>(take * kBQ, cq - done));
        sg.dRow = static_cast<int32_t>(cur.dRows);
        sg.nd = static_cast<int32_t>(cd);
        sg.item = static_cast<int32_t>(cur.items);
        sg.ndb = static_cast<int32_t>(ndb);
        const int32_t segIndex = static_cast<int32_t>(cur.nseg);
        for (int64_t i = 0; i < take * kBQ; ++i) {
          const bool real = i < sg.nq;
          hQ.push_back(real ? qOrder[qOff[c] + done + i] : -1);
          hRowSeg.push_back(real ? segIndex : -1);
        }
        for (int64_t j = 0; j < ndb * kBD; ++j) hD.push_back(j < cd ? listIds[listOff[c] + j] : -1);
        for (int64_t qb = 0; qb < take; ++qb) {
          for (int64_t db = 0; db < ndb; ++db) {
            hA.push_back(qbuf.get() + (sg.qRow + qb * kBQ) * dim);
            hB.push_back(dbuf.get() + (sg.dRow + db * kBD) * dim);
            hC.push_back(ws.get() + (sg.item + qb * ndb + db) * static_cast<int64_t>(kBQ) * kBD);
          }
        }
        hSegs.push_back(sg);
        cur.qRows += take * kBQ;
        cur.dRows += ndb * kBD;
        cur.items += take * ndb;
        cur.nseg += 1;
        done += sg.nq;
      }
    }
    flush();
    DeviceBuffer<int32_t> dQ(ctx.mem, hQ.size(), "batch query ids");
    DeviceBuffer<int32_t> dRowSeg(ctx.mem, hRowSeg.size(), "batch row segments");
    DeviceBuffer<int32_t> dD(ctx.mem, hD.size(), "batch list ids");
    DeviceBuffer<IvfSegment> dSegs(ctx.mem, hSegs.size(), "batch segments");
    DeviceBuffer<const __half*> dA(ctx.mem, hA.size(), "GEMM pointers");
    DeviceBuffer<const __half*> dB(ctx.mem, hB.size(), "GEMM pointers");
    DeviceBuffer<float*> dC(ctx.mem, hC.size(), "GEMM pointers");
    upload(dQ, hQ, stream);
    upload(dRowSeg, hRowSeg, stream);
    upload(dD, hD, stream);
    upload(dSegs, hSegs, stream);
    upload(dA, hA, stream);
    upload(dB, hB, stream);
    upload(dC, hC, stream);
    const float alpha = score == Score::L2 ? -2.0f : -1.0f;
    for (const Batch& bt : batches) {
      gatherRows(x.data, dim, dQ.get() + bt.qStart, bt.qRows, qbuf.get(), nullptr, nullptr, stream);
      gatherRows(x.data, dim, dD.get() + bt.dStart, bt.dRows, dbuf.get(), score == Score::L2 ? x.norms : nullptr,
                 score == Score::L2 ? dNorm.get() : nullptr, stream);
      ctx.blas.scoresBatched(dA.get() + bt.itemStart, dB.get() + bt.itemStart, dC.get() + bt.itemStart, kBQ, kBD,
                             dim, alpha, static_cast<int>(bt.items));
      const bool bridgePass = bridges && r >= 1 && r <= bridgeCount;
      ivfSelect(out.width, dSegs.get() + bt.segStart, dRowSeg.get() + bt.qStart, static_cast<int>(bt.qRows),
                dQ.get() + bt.qStart, dD.get() + bt.dStart, score == Score::L2 ? dNorm.get() : nullptr, ws.get(),
                out.keys, out.ids, bridgePass ? bridges + (r - 1) : nullptr, bridgeCount, stream);
    }
    KNN_CUDA(cudaStreamSynchronize(stream));  // the host plan and its device copies die with this pass
    if (ctx.verbose)
      std::fprintf(stderr, "[knn-gpu] ivf pass %d: %zu batches, %zu GEMM items\n", r, batches.size(), hC.size());
    timer.mark("ivf pass");
    report(0.2 + 0.8 * (r + 1) / probes);
  }
}

}  // namespace knn::gpu
