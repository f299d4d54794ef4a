import type { Settings } from '../../src/config.js';
import { usableGpuCount } from '../../src/builders/choose.js';
import { createProcessBuild } from '../../src/jobs/process-build.js';
import { processBuildOptionsFrom } from '../../src/jobs/worker-config.js';
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
    buildFactory: (settings, log, gpu) => {
      const workers = processBuildOptionsFrom(settings, usableGpuCount(gpu));
      workers.config.storage = { ...workers.config.storage, ...storage };
      return createProcessBuild({ ...workers, log });
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
