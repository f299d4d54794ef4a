// Start-up and shutdown of the service: settings, logger, GPU probe, admission planner, HTTP server (startService),
// and the drain on SIGTERM/SIGINT (serve). Nothing here exits the process: startService throws (ConfigError for
// bad settings), serve resolves with the exit code, and the entry point (main.ts) exits with it. Tests start the
// service through startService with a build double; the same path as production.
import { readFileSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

import type { DestinationStream, Logger } from 'pino';

import { usableGpuCount } from './builders/choose.js';
import { probeGpu } from './builders/gpu-probe.js';
import { type GpuInfo, noGpu } from './builders/native.js';
import { ConfigError, type Settings, loadSettings } from './config.js';
import { gpuMemoryReader } from './gpu-memory.js';
import type { BuildFn } from './jobs/scheduler.js';
import { createLogger } from './logger.js';
import { plannerFor } from './jobs/plan.js';
import { type Service, createService } from './service.js';
import { LocalObjectStore, STALE_TEMP_MS } from './storage/local.js';
import { hostMemoryLimit, memoryBudget } from './host-memory.js';

export interface StartOptions {
  /** Makes the function that runs one job (the pipeline), once settings and GPUs are known. */
  buildFactory: (settings: Settings, log: Logger, gpu: GpuInfo) => BuildFn;
  /** The environment settings are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where the JSON log lines go (default stdout). */
  logDestination?: DestinationStream;
  /** What GPU device 0 is (default: probed in a child process). Tests: a GPU this machine lacks. */
  probeGpu?: () => Promise<GpuInfo>;
  /** GPU memory in use, for the metrics (default: read with nvidia-smi). */
  gpuMemoryInUse?: () => number | null;
}

export const VERSION = readVersion();

/**
 * Starts the service and its HTTP server (HOST, PORT). Throws ConfigError for settings that cannot work (invalid
 * values, BUILDER=gpu without a usable GPU), before anything listens.
 */
export async function startService(o: StartOptions): Promise<Service> {
  let settings = loadSettings(o.env ?? process.env);
  const log = createLogger(settings.logLevel, o.logDestination);
  settings = withMemoryBudget(settings, log);
  // Probed in a child process: the service itself never holds a CUDA context.
  const gpu = settings.builder === 'cpu' ? noGpu('BUILDER=cpu') : await (o.probeGpu ?? (() => probeGpu(0)))();
  const gpuCount = usableGpuCount(gpu);
  if (settings.builder === 'gpu' && gpuCount === 0) {
    log.fatal({ reason: gpu.error }, 'BUILDER=gpu but no usable GPU');
    throw new ConfigError([`BUILDER=gpu but no usable GPU (${gpu.error ?? 'none found'})`]);
  }
  const service = await createService({
    settings,
    log,
    build: o.buildFactory(settings, log, gpu),
    plan: plannerFor(settings, gpu),
    gpuDeviceCount: gpuCount,
    version: VERSION,
    gpuMemoryInUse: o.gpuMemoryInUse ?? gpuMemoryReader(0),
  });
  await service.app.listen({ host: settings.host, port: settings.port });
  log.info(
    {
      version: VERSION,
      address: service.app.server.address(),
      builder: settings.builder,
      gpus: gpuCount,
      gpu: gpuCount > 0 ? `${gpu.name} (${(gpu.totalBytes / 2 ** 30).toFixed(0)} GiB)` : gpu.error,
      objectStore: settings.objectStore,
      objectStoreReason: settings.objectStoreReason,
      maxWorkers: settings.maxWorkers,
      queueBackend: settings.queue.backend,
      ...(settings.queue.backend === 'redis' ? { replica: settings.queue.replicaName } : {}),
      cpuMemoryLimitGiB: gib(settings.cpuMemoryLimitBytes),
      auth: settings.auth ? 'basic' : 'off',
    },
    'service started',
  );
  removeStaleTemps(settings, log);
  return service;
}

/**
 * The service process's life: starts the service (`onStarted` gets it), waits for SIGTERM or SIGINT, drains, and
 * resolves with the exit code: 0 after a clean drain; 1 when the shutdown failed, or at once on a second signal
 * (an operator insisting); 2 for settings that cannot work (the problems written to stderr).
 */
export async function serve(o: StartOptions & { onStarted?: (service: Service) => void }): Promise<number> {
  let service: Service;
  try {
    service = await startService(o);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`knn-remote-index-builder: ${e.message}\n`);
    return 2;
  }
  o.onStarted?.(service);
  const { log } = service;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      log.info({ signal }, 'signal received: draining');
      service.shutdown().then(
        () => resolve(0),
        (e: unknown) => {
          log.error({ err: e }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

const gib = (bytes: number) => Math.round((bytes / 2 ** 30) * 100) / 100;

/** CPU_MEMORY_LIMIT capped at what the machine or its cgroup really has (logged when it is capped). */
function withMemoryBudget(settings: Settings, log: Logger): Settings {
  const limit = hostMemoryLimit();
  const budget = memoryBudget(settings.cpuMemoryLimitBytes, limit);
  if (budget.capped) {
    log.warn(
      {
        requestedGiB: gib(settings.cpuMemoryLimitBytes),
        cpuMemoryLimitGiB: gib(budget.bytes),
        hostGiB: gib(limit.bytes),
        source: limit.source,
      },
      'CPU_MEMORY_LIMIT is more than this host has: capped (the host less 10%, at most 1 GiB, for the service)',
    );
  }
  return { ...settings, cpuMemoryLimitBytes: budget.bytes };
}

/**
 * What killed workers (a crash, kill -9) left is removed in the background at start-up: temporary files in the
 * local store, and spool folders (`index-*` in INDEX_SPOOL_DIR), once untouched for STALE_TEMP_MS.
 */
function removeStaleTemps(settings: Settings, log: Logger): void {
  const local =
    settings.objectStore === 'local' ? new LocalObjectStore(settings.storage).removeStaleTemps() : 0;
  const spool = settings.spoolDir ? removeStaleSpoolFolders(settings.spoolDir) : 0;
  Promise.all([local, spool]).then(
    ([files, folders]) => {
      if (files + folders > 0)
        log.info({ removed: files + folders, files, folders }, 'removed stale temporary files');
    },
    (e: unknown) => log.warn({ err: e }, 'could not look for stale temporary files'),
  );
}

async function removeStaleSpoolFolders(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names.filter((n) => n.startsWith('index-'))) {
    const info = await stat(path.join(dir, name)).catch(() => undefined);
    if (!info?.isDirectory() || Date.now() - info.mtimeMs < STALE_TEMP_MS) continue;
    await rm(path.join(dir, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(path.resolve(import.meta.dirname, rel), 'utf8')) as { version: string })
        .version;
    } catch {
      // try the next location (src/ when run by tsx, dist/src/ when compiled)
    }
  }
  return '0.0.0';
}
