// Asks the native addon about GPUs from a short-lived child process, so the service process itself never
// creates a CUDA context (which would hold GPU memory for its whole life) or loads CUDA at all.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import { type GpuInfo, addonFile, noGpu } from './native.js';

/** gpuInfo(device) measured in a child process; never throws. */
export async function probeGpu(device = 0): Promise<GpuInfo> {
  try {
    // A plain `node -e` child: it needs nothing but the addon's file, however this code was built or bundled.
    const script = `process.stdout.write(JSON.stringify(require(${JSON.stringify(addonFile())}).gpuInfo(${Number(device)})))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { timeout: 60_000 });
    return JSON.parse(stdout) as GpuInfo;
  } catch (e) {
    return noGpu(`GPU probe failed: ${(e as Error).message.split('\n')[0]}`);
  }
}
