// The real service (real pipeline in worker processes) on loopback, started as the service process starts it
// (startService) but without process signals, for integration tests. KNN_SERVICE_URL points tests at an external
// one instead.
import type { Settings } from '../../src/config.js';
import { createProcessBuild } from '../../src/pipeline/process-build.js';
import { workerConfigFrom } from '../../src/pipeline/worker-config.js';
import { startService } from '../../src/run.js';
import type { Service } from '../../src/service.js';
import type { StorageSettings } from '../../src/storage/settings.js';
import { logLines, serviceUrl } from './service.js';

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
  const logs: string[] = [];
  const service = await startService({
    env: { LOG_LEVEL: 'info', BUILDER: builder, BUILD_THREADS: '2', HOST: '127.0.0.1', PORT: '0', ...env },
    logDestination: logLines(logs),
    buildFactory: (settings) => {
      const config = workerConfigFrom(settings);
      config.storage = { ...config.storage, ...storage };
      return createProcessBuild({ config });
    },
  });
  return {
    url: serviceUrl(service),
    settings: service.settings,
    service,
    logs,
    close: async () => {
      await service.shutdown(10_000);
    },
  };
}
