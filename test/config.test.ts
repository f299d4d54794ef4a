// Settings: the reference names and defaults, and start-up refused with a message naming each bad setting.
import { describe, expect, it } from 'vitest';

import { ConfigError, loadSettings } from '../src/config.js';

describe('settings', () => {
  it('has the reference defaults', () => {
    const s = loadSettings({});
    expect(s).toMatchObject({
      port: 1025,
      host: '0.0.0.0',
      maxWorkers: 2,
      requestStoreMaxSize: 10_000,
      requestStoreTtlSeconds: 1800,
      gpuMemoryLimitBytes: 24 * 2 ** 30,
      cpuMemoryLimitBytes: 32 * 2 ** 30,
      logLevel: 'info',
      builder: 'auto',
      auth: null,
      objectStore: 'local',
    });
    expect(s.s3.region).toBe('us-east-1');
  });

  it('reads every setting from its variable', () => {
    const s = loadSettings({
      PORT: '8080',
      MAX_WORKERS: '4',
      REQUEST_STORE_MAX_SIZE: '50',
      REQUEST_STORE_TTL_SECONDS: '60',
      GPU_MEMORY_LIMIT: '70.5',
      CPU_MEMORY_LIMIT: '100',
      LOG_LEVEL: 'DEBUG',
      S3_ENDPOINT_URL: 'http://127.0.0.1:9000',
      AWS_DEFAULT_REGION: 'eu-west-1',
      BASIC_AUTH_USERNAME: 'u',
      BASIC_AUTH_PASSWORD: 'p',
      BUILDER: 'cpu',
    });
    expect(s).toMatchObject({
      port: 8080,
      maxWorkers: 4,
      requestStoreMaxSize: 50,
      requestStoreTtlSeconds: 60,
      gpuMemoryLimitBytes: Math.floor(70.5 * 2 ** 30),
      cpuMemoryLimitBytes: 100 * 2 ** 30,
      logLevel: 'debug',
      auth: { username: 'u', password: 'p' },
      builder: 'cpu',
      objectStore: 's3',
      s3: { endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1' },
    });
  });

  it('refuses invalid settings, naming each one', () => {
    const bad = {
      MAX_WORKERS: '0',
      PORT: 'http',
      REQUEST_STORE_TTL_SECONDS: '-5',
      GPU_MEMORY_LIMIT: 'lots',
      LOG_LEVEL: 'chatty',
      BUILDER: 'tpu',
      BASIC_AUTH_USERNAME: 'only-user',
      S3_ENDPOINT_URL: 'localhost:9000',
    };
    try {
      loadSettings(bad);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const msg = (e as Error).message;
      for (const name of Object.keys(bad)) expect(msg).toContain(name);
      expect((e as ConfigError).problems).toHaveLength(Object.keys(bad).length);
    }
  });

  it('build workers: warm by default (100 jobs, 2 GiB idle RSS); one process per job with WARM_WORKERS=false; bounds', () => {
    expect(loadSettings({}).workers).toEqual({ warm: true, maxJobs: 100, maxIdleRssBytes: 2 * 2 ** 30 });
    expect(
      loadSettings({ WARM_WORKERS: 'FALSE', WORKER_MAX_JOBS: '5', WORKER_MAX_IDLE_RSS: '0.5' }).workers,
    ).toEqual({ warm: false, maxJobs: 5, maxIdleRssBytes: 2 ** 29 });
    const bad = { WARM_WORKERS: 'sometimes', WORKER_MAX_JOBS: '0', WORKER_MAX_IDLE_RSS: '0.01' };
    expect(() => loadSettings(bad)).toThrow(ConfigError);
    try {
      loadSettings(bad);
    } catch (e) {
      expect((e as ConfigError).problems).toHaveLength(3);
      for (const name of Object.keys(bad)) expect((e as Error).message).toContain(name);
    }
  });

  it('checks GPU degrees and S3 transfer settings against the limits of the code that uses them, reporting all', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadSettings(env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems;
      }
      return [];
    };
    // The GPU builder takes degrees up to 192: 500 used to start and then fail every GPU job.
    expect(problems({ GPU_GRAPH_DEGREE: '500' })).toEqual([expect.stringMatching(/^GPU_GRAPH_DEGREE .*192/)]);
    expect(problems({ GPU_GRAPH_DEGREE: '192', GPU_INTERMEDIATE_DEGREE: '192' })).toEqual([]);
    expect(problems({ GPU_GRAPH_DEGREE: '64', GPU_INTERMEDIATE_DEGREE: '32' })).toEqual([
      expect.stringMatching(/GPU_INTERMEDIATE_DEGREE \(32\) must be at least GPU_GRAPH_DEGREE \(64\)/),
    ]);
    // The store's bounds, named by variable (not by the store's internal field), every problem at once.
    const s3 = problems({ S3_CONCURRENCY: '300', S3_UPLOAD_CONCURRENCY: '65', S3_MAX_ATTEMPTS: '0' });
    expect(s3).toHaveLength(3);
    expect(s3.join('\n')).toMatch(/S3_CONCURRENCY must be an integer from 1 to 256/);
    expect(s3.join('\n')).toMatch(/S3_UPLOAD_CONCURRENCY must be an integer from 1 to 64/);
    expect(s3.join('\n')).toMatch(/S3_MAX_ATTEMPTS/);
    expect(s3.join('\n')).not.toMatch(/readConcurrency|writeConcurrency|maxAttempts/);
    expect(loadSettings({ S3_CONCURRENCY: '256' }).storage.readConcurrency).toBe(256);
    // S3_PART_SIZE_MB sets both part sizes: its bounds are theirs (STORAGE_BOUNDS), reported like the others.
    expect(problems({ S3_PART_SIZE_MB: '6000', BUILD_THREADS: '5000' })).toEqual([
      expect.stringMatching(/^S3_PART_SIZE_MB must be an integer from 1 to 5120, got "6000"/),
      expect.stringMatching(/^BUILD_THREADS must be an integer from 0 to 4096/),
    ]);
    expect(problems({ S3_PART_SIZE_MB: '0' })).toEqual([expect.stringMatching(/^S3_PART_SIZE_MB .* from 1/)]);
    expect(loadSettings({ S3_PART_SIZE_MB: '2' }).storage).toMatchObject({
      readPartBytes: 2 * 2 ** 20,
      writePartBytes: 5 * 2 ** 20, // S3's smallest upload part
    });
    expect(loadSettings({ S3_PART_SIZE_MB: '5120' }).storage.writePartBytes).toBe(5 * 2 ** 30);
  });

  it('picks S3 when any sign of S3 configuration exists, and OBJECT_STORE wins', () => {
    expect(loadSettings({ AWS_ACCESS_KEY_ID: 'x' }).objectStore).toBe('s3');
    expect(loadSettings({ AWS_PROFILE: 'prod' }).objectStore).toBe('s3');
    expect(loadSettings({ OBJECT_STORE: 'local', S3_ENDPOINT_URL: 'http://h:1' }).objectStore).toBe('local');
    expect(loadSettings({ OBJECT_STORE: 's3' }).objectStore).toBe('s3');
  });

  it('queue backend: memory by default; redis needs a redis:// REDIS_URL, which no error message repeats', () => {
    expect(loadSettings({}).queue).toMatchObject({
      backend: 'memory',
      redisUrl: null,
      redisPrefix: 'knn-builder',
      replicaLostSeconds: 30,
      replicaLostRetries: 1,
    });
    expect(
      loadSettings({
        QUEUE_BACKEND: 'Redis',
        REDIS_URL: 'redis://u:secret@redis:6379/2',
        REPLICA_NAME: 'b1',
        REPLICA_LOST_SECONDS: '5',
        REPLICA_LOST_RETRIES: '0',
      }).queue,
    ).toEqual({
      backend: 'redis',
      redisUrl: 'redis://u:secret@redis:6379/2',
      redisPrefix: 'knn-builder',
      replicaName: 'b1',
      replicaLostSeconds: 5,
      replicaLostRetries: 0,
    });
    expect(() => loadSettings({ QUEUE_BACKEND: 'redis' })).toThrow(/QUEUE_BACKEND=redis needs REDIS_URL/);
    try {
      loadSettings({ QUEUE_BACKEND: 'redis', REDIS_URL: 'http://u:hunter2@x', REDIS_PREFIX: 'a b' });
      expect.unreachable();
    } catch (e) {
      const msg = (e as Error).message;
      expect(msg).toMatch(/REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/);
      expect(msg).toMatch(/REDIS_PREFIX/);
      expect(msg).not.toContain('hunter2');
    }
    expect(() => loadSettings({ QUEUE_BACKEND: 'kafka' })).toThrow(
      /QUEUE_BACKEND must be one of memory, redis/,
    );
  });
});
