// Asks the native addon about GPUs from a short-lived child process, so the service process itself never
// creates a CUDA context (which would hold GPU memory for its whole life) or loads CUDA at all.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { type GpuInfo, gpuInfo } from './native.js';
import { tsxExecArgv } from '../tsx-loader.js';

const NO_GPU = (error: string): GpuInfo => ({
  compiled: false,
  deviceCount: 0,
  name: '',
  totalBytes: 0,
  freeBytes: 0,
  computeCapability: '0.0',
  error,
});

/** gpuInfo(device) measured in a child process; never throws. */
export async function probeGpu(device = 0): Promise<GpuInfo> {
  const self = fileURLToPath(import.meta.url);
  const execArgv = self.endsWith('.ts') && existsSync(self) ? tsxExecArgv() : [];
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [...execArgv, self, String(device)], {
      timeout: 60_000,
      env: { ...process.env, KNN_GPU_PROBE: '1' },
    });
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as GpuInfo;
  } catch (e) {
    return NO_GPU(`GPU probe failed: ${(e as Error).message.split('\n')[0]}`);
  }
}

// Run as a script: print gpuInfo as one JSON line.
if (process.env.KNN_GPU_PROBE === '1' && process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${JSON.stringify(gpuInfo(Number(process.argv[2] ?? 0)))}\n`);
}
