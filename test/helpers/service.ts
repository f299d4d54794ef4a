// The real service on loopback (started as the service process starts it) with a build double whose jobs the
// test finishes by hand.
import { Writable } from 'node:stream';

import type { Settings } from '../../src/config.js';
import type { BuildContext, BuildOutcome } from '../../src/jobs/scheduler.js';
import { type GpuInfo, noGpu } from '../../src/builders/native.js';
import { startService } from '../../src/run.js';
import type { Service } from '../../src/service.js';

interface Pending {
  ctx: BuildContext;
  resolve: (o: BuildOutcome) => void;
  reject: (e: Error) => void;
}

/** A build function whose calls wait until the test completes or fails them. */
export class ControlledBuilds {
  readonly calls: BuildContext[] = [];
  private readonly pending = new Map<string, Pending>();
  private readonly waiters: (() => void)[] = [];
  running = 0;
  maxRunning = 0;

  readonly build = (ctx: BuildContext): Promise<BuildOutcome> => {
    this.calls.push(ctx);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    ctx.report({ phase: 'downloading', fraction: 0 });
    const done = new Promise<BuildOutcome>((resolve, reject) => {
      this.pending.set(ctx.id, { ctx, resolve, reject });
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true });
    }).finally(() => {
      this.running--;
      this.pending.delete(ctx.id);
    });
    for (const w of this.waiters.splice(0)) w();
    return done;
  };

  isRunning(id: string): boolean {
    return this.pending.has(id);
  }

  /** Waits until `count` builds have started in all. */
  async started(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.calls.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.calls.length} of ${count} builds started`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 20);
      });
    }
  }

  /** Completes the build, with what a real build would have measured when given. */
  complete(id: string, measurements?: BuildOutcome['measurements']): void {
    const p = this.pending.get(id);
    if (!p) throw new Error(`no running build ${id}`);
    p.resolve({
      fileName: p.ctx.request.vectorPath
        .split('/')
        .pop()!
        .replace(/\.knnvec$/, '.faiss'),
      ...(measurements ? { measurements } : {}),
    });
  }

  fail(id: string, message: string): void {
    const p = this.pending.get(id);
    if (!p) throw new Error(`no running build ${id}`);
    p.reject(new Error(message));
  }
}

export interface TestService {
  service: Service;
  settings: Settings;
  url: string;
  builds: ControlledBuilds;
  logs: string[];
  close(): Promise<void>;
}

/**
 * Starts the service as the service process does (startService), on 127.0.0.1 (random port), with the build double,
 * captured JSON logs, `gpuDeviceCount` test GPUs in place of the probe, and the GPU memory reading given.
 */
export async function startTestService(
  env: Record<string, string> = {},
  gpuDeviceCount = 0,
  gpuMemoryInUse: () => number | null = () => null,
): Promise<TestService> {
  const logs: string[] = [];
  const builds = new ControlledBuilds();
  const service = await startService({
    env: { LOG_LEVEL: 'debug', HOST: '127.0.0.1', PORT: '0', ...env },
    logDestination: logLines(logs),
    buildFactory: () => builds.build,
    probeGpu: async () => (gpuDeviceCount ? testGpu(gpuDeviceCount) : noGpu('test: no GPU')),
    gpuMemoryInUse,
  });
  return {
    service,
    settings: service.settings,
    url: serviceUrl(service),
    builds,
    logs,
    close: async () => {
      for (const job of service.store.unfinished()) service.scheduler.cancel(job.id, 'test over');
      await service.app.close();
    },
  };
}

/** A log destination that keeps each JSON line in `logs`. */
export function logLines(logs: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
}

/** The loopback URL a started service listens on. */
export function serviceUrl(service: Service): string {
  const addr = service.app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return `http://127.0.0.1:${addr.port}`;
}

/** What the GPU probe reports for `count` 80 GiB devices (for admission tests on machines without one). */
export function testGpu(count: number): GpuInfo {
  const totalBytes = 80 * 2 ** 30;
  return {
    compiled: true,
    deviceCount: count,
    name: 'test GPU',
    totalBytes,
    freeBytes: totalBytes,
    computeCapability: '9.0',
    error: null,
  };
}
