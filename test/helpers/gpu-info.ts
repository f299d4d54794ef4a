// GPU probe results for tests that decide without a GPU.
import type { GpuInfo } from '../../src/builders/native.js';

const GIB = 2 ** 30;
export const H100: GpuInfo = {
  compiled: true,
  deviceCount: 1,
  name: 'NVIDIA H100 80GB HBM3',
  totalBytes: 80 * GIB,
  freeBytes: 79 * GIB,
  computeCapability: '9.0',
  error: null,
};
export const NOT_COMPILED: GpuInfo = {
  ...H100,
  compiled: false,
  deviceCount: 0,
  error: 'the native addon was built without the GPU builder',
};
export const NO_DEVICE: GpuInfo = {
  ...H100,
  deviceCount: 0,
  error: 'no usable CUDA device: no CUDA-capable device',
};
