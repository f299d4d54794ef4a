// The service's entry point: `node dist/src/main.js` (npm start) or `tsx src/main.ts` (npm run dev). The only place
// that decides the process's exit code (run.ts says which).
import { createProcessBuild } from './pipeline/process-build.js';
import { workerConfigFrom } from './pipeline/worker-config.js';
import { serve } from './run.js';

process.exit(
  await serve({ buildFactory: (settings) => createProcessBuild({ config: workerConfigFrom(settings) }) }),
);
