// Start-up and shutdown of the service process: settings, logger, GPU probe, admission planner, HTTP server,
// and SIGTERM/SIGINT handling. main.ts calls it with the real pipeline; tests call it with a build double.
import { readFileSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';

import type { Logger } from 'pino';

import { usableGpuCount } from './builders/choose.js';
import { probeGpu } from './builders/gpu-probe.js';
import { type GpuInfo, noGpu } from './builders/native.js';
import { ConfigError, type Settings, loadSettings } from './config.js';
import type { BuildFn } from './jobs/scheduler.js';
import { createLogger } from './logger.js';
import { plannerFor } from './pipeline/plan.js';
import { type Service, type ServiceOptions, createService } from './service.js';
import { LocalObjectStore, STALE_TEMP_MS } from './storage/local.js';
import { hostMemoryLimit, memoryBudget } from './host-memory.js';

export interface RunOptions {
  /** Makes the function that runs one job (the pipeline), once settings and GPUs are known. */
  buildFactory: (settings: Settings, log: Logger, gpu: GpuInfo) => BuildFn;
  plugins?: ServiceOptions['plugins'];
  env?: NodeJS.ProcessEnv;
}

export const VERSION = readVersion();

export async function run(o: RunOptions): Promise<Service> {
  let settings: Settings;
  try {
    settings = loadSettings(o.env ?? process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`knn-remote-index-builder: ${e.message}\n`);
    process.exit(2);
  }
  const log = createLogger(settings.logLevel);
  settings = withMemoryBudget(settings, log);
  // Probed in a child process: the service itself never holds a CUDA context.
  const gpu = settings.builder === 'cpu' ? noGpu('BUILDER=cpu') : await probeGpu(0);
  const gpuCount = usableGpuCount(gpu);
  if (settings.builder === 'gpu' && gpuCount === 0) {
    log.fatal({ reason: gpu.error }, 'BUILDER=gpu but no usable GPU');
    process.exit(2);
  }
  const service = await createService({
    settings,
    log,
    build: o.buildFactory(settings, log, gpu),
    plan: plannerFor(settings, gpu),
    gpuDeviceCount: gpuCount,
    version: VERSION,
    ...(o.plugins ? { plugins: o.plugins } : {}),
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
  handleSignals(service, log);
  removeStaleTemps(settings, log);
  return service;
}

// First signal: drain gracefully and exit 0. A second one: exit at once (an operator insisting).
function handleSignals(service: Service, log: Logger): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'signal received: draining');
    service.shutdown().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
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
