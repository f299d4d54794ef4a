// What the build workers get from the service's settings: each job's WorkerConfig, and the pool's shape.
import type { Settings } from '../config.js';
import type { WorkerConfig } from '../pipeline/messages.js';
import type { ProcessBuildOptions } from './process-build.js';

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

/**
 * The worker pool of a service with these settings and `gpuCount` usable GPUs: MAX_WORKERS warm workers (each
 * warming every GPU when the GPU builder may run), or one process per job with WARM_WORKERS=false.
 */
export function processBuildOptionsFrom(
  s: Settings,
  gpuCount: number,
): Pick<ProcessBuildOptions, 'config' | 'pool' | 'warmGpus'> {
  return {
    config: workerConfigFrom(s),
    ...(s.workers.warm
      ? {
          pool: {
            size: s.maxWorkers,
            maxJobs: s.workers.maxJobs,
            maxIdleRssBytes: s.workers.maxIdleRssBytes,
          },
          warmGpus: s.builder === 'cpu' ? [] : Array.from({ length: gpuCount }, (_, i) => i),
        }
      : {}),
  };
}
