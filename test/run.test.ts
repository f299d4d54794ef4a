// Start-up as the service process does it (src/run.ts), in this process: settings that cannot work are thrown as
// ConfigError (serve() turns them into exit code 2) and nothing is left listening; the process itself never exits.
import { afterEach, describe, expect, it, vi } from 'vitest';

import { noGpu } from '../src/builders/native.js';
import { ConfigError } from '../src/config.js';
import { serve, startService } from '../src/run.js';
import { logLines, serviceUrl } from './helpers/service.js';

const neverBuilds = () => () => Promise.reject(new Error('no builds in this test'));

describe('startService', () => {
  afterEach(() => vi.restoreAllMocks());

  it('throws ConfigError naming each invalid setting', async () => {
    const started = startService({
      env: { PORT: 'x', MAX_WORKERS: '0' },
      logDestination: logLines([]),
      buildFactory: neverBuilds,
    });
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toThrow(/PORT[\s\S]*MAX_WORKERS|MAX_WORKERS[\s\S]*PORT/);
  });

  it('throws ConfigError for BUILDER=gpu without a usable GPU, after logging why', async () => {
    const logs: string[] = [];
    const started = startService({
      env: { BUILDER: 'gpu', HOST: '127.0.0.1', PORT: '0' },
      logDestination: logLines(logs),
      buildFactory: neverBuilds,
      probeGpu: async () => noGpu('no CUDA driver'),
    });
    await expect(started).rejects.toThrow(/BUILDER=gpu but no usable GPU \(no CUDA driver\)/);
    expect(logs.join('\n')).toMatch(/"level":60.*BUILDER=gpu but no usable GPU/);
  });

  it('starts the service fully formed and listening, with its settings and metrics', async () => {
    const service = await startService({
      env: { HOST: '127.0.0.1', PORT: '0', BUILDER: 'cpu' },
      logDestination: logLines([]),
      buildFactory: neverBuilds,
    });
    try {
      expect(service.settings.builder).toBe('cpu');
      const metrics = await fetch(`${serviceUrl(service)}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^knn_queue_depth 0$/m);
    } finally {
      await service.shutdown(0, 0);
    }
  });
});

describe('serve', () => {
  it('resolves with exit code 2 for invalid settings, the problems on stderr', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await serve({ env: { PORT: 'x' }, buildFactory: neverBuilds })).toBe(2);
    expect(String(stderr.mock.calls[0]?.[0])).toMatch(
      /^knn-remote-index-builder: invalid settings:[\s\S]*PORT/,
    );
  });
});
