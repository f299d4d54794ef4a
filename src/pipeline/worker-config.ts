// What a job's worker gets from the service's settings.
import type { Settings } from '../config.js';
import type { WorkerConfig } from './messages.js';

export function workerConfigFrom(s: Settings): WorkerConfig {
  return {
    storage: {
      kind: s.objectStore,
      localRoot: s.localStoreRoot,
      region: s.s3.region,
      ...(s.s3.endpoint ? { endpoint: s.s3.endpoint } : {}),
    },
    formatPolicy: 'compatible',
    threads: s.buildThreads,
    gpu: { memoryLimitBytes: s.gpuMemoryLimitBytes },
    logLevel: s.logLevel,
  };
}
