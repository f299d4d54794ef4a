// The service's entry point: `node dist/src/main.js` (npm start) or `tsx src/main.ts` (npm run dev).
import { createProcessBuild } from './pipeline/process-build.js';
import { workerConfigFrom } from './pipeline/worker-config.js';
import { run } from './run.js';

await run({
  buildFactory: (settings) => createProcessBuild({ config: workerConfigFrom(settings) }),
});
