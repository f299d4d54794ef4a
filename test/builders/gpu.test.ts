// The GPU builder on a real GPU (test/gpu/cases.ts). Where there is no GPU builder or no device (CI), the suite
// is skipped and its title says why; on the GPU machine scripts/gpu-check.sh runs the same cases.
import { describe, it } from 'vitest';

import { gpuCases, gpuSkipReason } from '../gpu/cases.js';

const skip = gpuSkipReason();
if (skip) console.warn(`GPU builder tests skipped: ${skip}`);

describe.skipIf(skip !== null)(`GPU builder on a GPU${skip ? ` (skipped: ${skip})` : ''}`, () => {
  for (const c of gpuCases) it(c.name, c.run, 600_000);
});
