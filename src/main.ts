// The service's entry point: `node dist/src/main.js` (npm start) or `tsx src/main.ts` (npm run dev). The only place
// that decides the process's exit code (run.ts says which).
import { usableGpuCount } from './builders/choose.js';
import { createProcessBuild } from './jobs/process-build.js';
import { processBuildOptionsFrom } from './jobs/worker-config.js';
import { serve } from './run.js';

process.exit(
  await serve({
    buildFactory: (settings, log, gpu) =>
      createProcessBuild({ ...processBuildOptionsFrom(settings, usableGpuCount(gpu)), log }),
  }),
);
