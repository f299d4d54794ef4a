// GPU memory in use, read with nvidia-smi (no CUDA context in the service process), cached for a few seconds.
import { execFile } from 'node:child_process';

const CACHE_MS = 5_000;

/** Returns a function giving the last known bytes in use on `device`, or null when unknown (no nvidia-smi). */
export function gpuMemoryReader(device = 0): () => number | null {
  let value: number | null = null;
  let readAt = 0;
  let pending = false;
  const refresh = () => {
    pending = true;
    execFile(
      'nvidia-smi',
      ['--query-gpu=memory.used', '--format=csv,noheader,nounits', `--id=${device}`],
      { timeout: 5_000 },
      (err, stdout) => {
        pending = false;
        readAt = Date.now();
        const mib = Number(stdout?.trim());
        value = err || !Number.isFinite(mib) ? null : mib * 2 ** 20;
      },
    );
  };
  return () => {
    if (!pending && Date.now() - readAt > CACHE_MS) refresh();
    return value;
  };
}
