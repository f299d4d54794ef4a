// The real service (real pipeline in worker processes) on loopback, composed as src/run.ts composes it but
// without process signals, for integration tests. KNN_SERVICE_URL points tests at an external one instead.
import { Writable } from 'node:stream';

import { type Settings, loadSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { usableGpuCount } from '../../src/builders/choose.js';
import { gpuInfo, noGpu } from '../../src/builders/native.js';
import { plannerFor } from '../../src/pipeline/plan.js';
import { createProcessBuild } from '../../src/pipeline/process-build.js';
import { workerConfigFrom } from '../../src/pipeline/worker-config.js';
import { type Service, createService } from '../../src/service.js';
import type { StorageSettings } from '../../src/storage/settings.js';

export interface RealService {
  url: string;
  settings: Settings;
  service: Service;
  logs: string[];
  close(): Promise<void>;
}

/**
 * Starts the service with the given store settings (credentials included), with the CPU builder, or with the
 * GPU builder on the machine's GPUs (`builder: 'gpu'`, the GPU machine only).
 */
export async function startRealService(
  storage: Partial<StorageSettings>,
  env: Record<string, string> = {},
  builder: 'cpu' | 'gpu' = 'cpu',
): Promise<RealService> {
  const settings = loadSettings({ LOG_LEVEL: 'info', BUILDER: builder, BUILD_THREADS: '2', ...env });
  const gpu = builder === 'gpu' ? gpuInfo(0) : noGpu('integration tests use the CPU builder');
  const logs: string[] = [];
  const log = createLogger(
    settings.logLevel,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    }),
  );
  const config = workerConfigFrom(settings);
  config.storage = { ...config.storage, ...storage };
  const service = await createService({
    settings,
    log,
    build: createProcessBuild({ config }),
    plan: plannerFor(settings, gpu),
    gpuDeviceCount: usableGpuCount(gpu),
    version: 'test',
  });
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = service.app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    settings,
    service,
    logs,
    close: async () => {
      await service.shutdown(10_000);
    },
  };
}
