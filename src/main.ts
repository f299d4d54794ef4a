// The service's entry point: `node dist/src/main.js` (npm start) or `tsx src/main.ts` (npm run dev).
import { gpuMemoryReader } from './gpu-memory.js';
import { ServiceMetrics } from './metrics.js';
import { createProcessBuild } from './pipeline/process-build.js';
import { workerConfigFrom } from './pipeline/worker-config.js';
import { run } from './run.js';

const metrics = new ServiceMetrics(gpuMemoryReader(0));

await run({
  buildFactory: (settings) =>
    createProcessBuild({
      config: workerConfigFrom(settings),
      onResult: (ctx, result) => metrics.observeResult(ctx, result),
    }),
  plugins: [
    async (app, service) => {
      metrics.attach(service);
      await metrics.route(app);
    },
  ],
});
