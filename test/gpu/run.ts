// The GPU checks under node:test, for the GPU machine (no node_modules there): scripts/gpu-check.sh bundles this
// file with esbuild and runs it with the packed node. Exit status non-zero when a check fails.
import { test } from 'node:test';

import { gpuCases, gpuSkipReason } from './cases.js';

const skip = gpuSkipReason();
for (const c of gpuCases) {
  test(c.name, skip ? { skip: `no GPU: ${skip}` } : { timeout: 600_000 }, c.run);
}
