// What a job's worker gets from the service's settings.
import type { Settings } from '../config.js';
import type { WorkerConfig } from './messages.js';

export function workerConfigFrom(s: Settings): WorkerConfig {
  return {
    storage: s.storage,
    formatPolicy: s.indexFormatPolicy,
    threads: s.buildThreads,
    gpu: {
      memoryLimitBytes: s.gpuMemoryLimitBytes,
      knnAlgorithm: s.gpu.knnAlgorithm,
      ...(s.gpu.graphDegree > 0 ? { graphDegree: s.gpu.graphDegree } : {}),
      ...(s.gpu.intermediateDegree > 0 ? { intermediateDegree: s.gpu.intermediateDegree } : {}),
    },
    ...(s.spoolDir ? { spoolDir: s.spoolDir } : {}),
    copyStoredVectors: s.copyStoredVectors,
    logLevel: s.logLevel,
  };
}
