// Element conversion to the fp16 compute layout, squared norms, row gathers and list initialisation.
#include <cuda_fp16.h>

#include <stdexcept>

#include "internal.h"
#include "topk.cuh"

namespace knn::gpu {

namespace {

constexpr int kThreads = 256;

int blocksFor(int64_t work, int threads = kThreads) {
  const int64_t b = (work + threads - 1) / threads;
  return static_cast<int>(b < 1 ? 1 : (b > (1 << 20) ? (1 << 20) : b));
}

// One thread per output element, grid-stride; padding columns are zero.
__global__ void convertFloat(const float* in, int64_t count, int dim, int dimPadded, float scale, __half* out,
                             unsigned* maxAbs) {
  float localMax = 0.0f;
  const int64_t total = count * dimPadded;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = e / dimPadded;
    const int col = static_cast<int>(e - row * dimPadded);
    float v = 0.0f;
    if (col < dim) {
      v = in[row * dim + col];
      localMax = fmaxf(localMax, fabsf(v));
    }
    out[e] = __float2half_rn(v * scale);
  }
  // Non-negative floats order like their bit patterns, so an integer max works.
  for (int o = 16; o > 0; o >>= 1) localMax = fmaxf(localMax, __shfl_xor_sync(kFullMask, localMax, o));
  if ((threadIdx.x & 31) == 0 && localMax > 0.0f) atomicMax(maxAbs, __float_as_uint(localMax));
}

__global__ void convertHalf(const uint16_t* in, int64_t count, int dim, int dimPadded, __half* out) {
  const int64_t total = count * dimPadded;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = e / dimPadded;
    const int col = static_cast<int>(e - row * dimPadded);
    out[e] = col < dim ? __ushort_as_half(in[row * dim + col]) : __float2half(0.0f);
  }
}

__global__ void convertInt8(const int8_t* in, int64_t count, int dim, int dimPadded, __half* out) {
  const int64_t total = count * dimPadded;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = e / dimPadded;
    const int col = static_cast<int>(e - row * dimPadded);
    out[e] = __int2half_rn(col < dim ? static_cast<int>(in[row * dim + col]) : 0);
  }
}

// Bit j of byte b (least significant first) becomes element 8b + j: +1 when set, -1 when clear, so that
// x.y = d - 2 * hamming(x, y).
__global__ void convertBits(const uint8_t* in, int64_t count, int dimBits, int dimPadded, __half* out) {
  const int64_t total = count * dimPadded;
  const int bytesPerRow = dimBits / 8;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = e / dimPadded;
    const int col = static_cast<int>(e - row * dimPadded);
    float v = 0.0f;
    if (col < dimBits) v = ((in[row * bytesPerRow + (col >> 3)] >> (col & 7)) & 1) ? 1.0f : -1.0f;
    out[e] = __float2half(v);
  }
}

// One warp per row; fp32 sum of squares of the fp16 values (the values the GEMMs see).
__global__ void rowNormsKernel(const __half* x, int64_t rows, int dim, float* norms) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5; row < rows; row += warps) {
    const __half2* r = reinterpret_cast<const __half2*>(x + row * dim);
    float s = 0.0f;
    for (int c = lane; c < dim / 2; c += 32) {
      const float2 v = __half22float2(r[c]);
      s += v.x * v.x + v.y * v.y;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(kFullMask, s, o);
    if (lane == 0) norms[row] = s;
  }
}

// One warp per row, 16-byte copies (dim is a multiple of 8).
__global__ void gatherKernel(const __half* src, int dim, const int32_t* idx, int64_t count, __half* dst,
                             const float* srcNorms, float* dstNorms) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int vecs = dim / 8;
  for (int64_t row = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5; row < count;
       row += warps) {
    const int32_t from = idx[row];
    int4* d = reinterpret_cast<int4*>(dst + row * dim);
    if (from < 0) {
      for (int c = lane; c < vecs; c += 32) d[c] = make_int4(0, 0, 0, 0);
      if (dstNorms && lane == 0) dstNorms[row] = 0.0f;
      continue;
    }
    const int4* s = reinterpret_cast<const int4*>(src + static_cast<int64_t>(from) * dim);
    for (int c = lane; c < vecs; c += 32) d[c] = s[c];
    if (dstNorms && srcNorms && lane == 0) dstNorms[row] = srcNorms[from];
  }
}

__global__ void initListsKernel(float* keys, int32_t* ids, int64_t total) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    keys[e] = kInf;
    ids[e] = -1;
  }
}

}  // namespace

void convertRows(const void* raw, knn::DataType type, int64_t count, int dim, int dimPadded, float scale,
                 __half* out, unsigned* maxAbs, cudaStream_t stream) {
  if (count == 0) return;
  const int blocks = blocksFor(count * dimPadded);
  switch (type) {
    case knn::DataType::Float32:
      convertFloat<<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(raw), count, dim, dimPadded, scale,
                                                    out, maxAbs);
      break;
    case knn::DataType::Float16:
      convertHalf<<<blocks, kThreads, 0, stream>>>(static_cast<const uint16_t*>(raw), count, dim, dimPadded, out);
      break;
    case knn::DataType::Int8:
      convertInt8<<<blocks, kThreads, 0, stream>>>(static_cast<const int8_t*>(raw), count, dim, dimPadded, out);
      break;
    case knn::DataType::Binary:
      convertBits<<<blocks, kThreads, 0, stream>>>(static_cast<const uint8_t*>(raw), count, dim, dimPadded, out);
      break;
  }
  KNN_LAUNCH();
}

void rowNorms(const __half* x, int64_t rows, int dim, float* norms, cudaStream_t stream) {
  if (rows == 0) return;
  rowNormsKernel<<<blocksFor(rows * 32), kThreads, 0, stream>>>(x, rows, dim, norms);
  KNN_LAUNCH();
}

void gatherRows(const __half* src, int dim, const int32_t* idx, int64_t count, __half* dst, const float* srcNorms,
                float* dstNorms, cudaStream_t stream) {
  if (count == 0) return;
  if (dim % 8 != 0) throw std::logic_error("gatherRows: dim must be a multiple of 8");
  gatherKernel<<<blocksFor(count * 32), kThreads, 0, stream>>>(src, dim, idx, count, dst, srcNorms, dstNorms);
  KNN_LAUNCH();
}

void initLists(const Lists& lists, cudaStream_t stream) {
  const int64_t total = lists.rows * lists.width;
  if (total == 0) return;
  initListsKernel<<<blocksFor(total), kThreads, 0, stream>>>(lists.keys, lists.ids, total);
  KNN_LAUNCH();
}

int listWidthFor(int k) {
  if (k > 256) throw std::invalid_argument("candidate lists hold at most 256 entries (got " + std::to_string(k) + ")");
  int w = 32;
  while (w < k) w <<= 1;
  return w;
}

ListsBuffer::ListsBuffer(DeviceMemory& mem, int64_t rows, int width, const char* what)
    : keys(mem, static_cast<std::size_t>(rows) * width, what), ids(mem, static_cast<std::size_t>(rows) * width, what) {
  view = Lists{keys.get(), ids.get(), rows, width};
}

}  // namespace knn::gpu
