// Start-up and shutdown of the service process: settings, logger, GPU probe, admission planner, HTTP server,
// and SIGTERM/SIGINT handling. main.ts calls it with the real pipeline; tests call it with a build double.
import { readFileSync } from 'node:fs';
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
      auth: settings.auth ? 'basic' : 'off',
    },
    'service started',
  );
  handleSignals(service, log);
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
