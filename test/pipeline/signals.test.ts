// Signals and orphans with the real service process and its real worker processes: a signal to the whole process
// group (Ctrl-C, systemd's KillMode=control-group) drains instead of killing builds; a service that dies
// (kill -9, a second signal) takes its workers with it within a second or two, even in the middle of a native
// build; a worker killed on its own fails only its job.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { KnnClient } from '../helpers/knn-client.js';
import {
  type ServiceProcess,
  allGone,
  isAlive,
  startServiceProcess,
  writeLocalSegment,
} from '../helpers/service-process.js';

let root: string;
/** A build of a few seconds on one thread (more on a busy machine): long enough to act in its middle. */
let slow: Record<string, unknown>;
let small: Record<string, unknown>;

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'knn-signals-'));
  slow = writeLocalSegment(root, 'c', 'seg/slow', 12_000, 32, {
    index_parameters: {
      space_type: 'l2',
      algorithm: 'hnsw',
      algorithm_parameters: { ef_construction: 400, ef_search: 100, m: 32 },
    },
  });
  small = writeLocalSegment(root, 'c', 'seg/small', 2_000, 16);
  return () => rmSync(root, { recursive: true, force: true });
});

describe('signals and orphan workers (real service process)', () => {
  let service: ServiceProcess | undefined;
  afterEach(() => service?.killAll());

  const start = (env: Record<string, string> = {}) =>
    startServiceProcess({
      OBJECT_STORE: 'local',
      LOCAL_STORE_ROOT: root,
      BUILD_THREADS: '1',
      SHUTDOWN_STATUS_LINGER_SECONDS: '20',
      ...env,
    });

  it('drains on SIGTERM to the whole process group: the worker ignores it and its job completes', async () => {
    service = await start();
    const client = new KnnClient({ endpoint: service.url });
    const id = await client.build(small);
    await service.waitFor(/"msg":"job downloading"/);
    process.kill(-service.pid, 'SIGTERM'); // the service and its worker, as Ctrl-C or systemd would

    const final = await client.poll(id, { intervalMs: 100, timeoutMs: 60_000 });
    expect(final.error_message).toBeNull(); // was: "the build worker crashed (SIGTERM) ..."
    expect(final).toMatchObject({ task_status: 'COMPLETED_INDEX_BUILD', file_name: 'small.faiss' });
    expect(await service.exited).toEqual([0, null]); // and it stopped lingering once COMPLETED was read
    expect(await allGone(service.workerPids(), 5000)).toBeGreaterThanOrEqual(0);
  });

  it('takes its worker along within 2 s when the service is killed with SIGKILL mid native build', async () => {
    service = await start();
    const client = new KnnClient({ endpoint: service.url });
    await client.build(slow);
    await service.waitFor(/"msg":"job building"/);
    const workers = service.workerPids();
    expect(workers).toHaveLength(1);
    expect(isAlive(workers[0]!)).toBe(true);

    process.kill(service.pid, 'SIGKILL'); // the service only: its worker becomes an orphan
    expect(await service.exited).toEqual([null, 'SIGKILL']);
    const took = await allGone(workers, 5000);
    expect(took).toBeGreaterThanOrEqual(0); // was: the orphan kept building with parent PID 1
    expect(took).toBeLessThan(2500);
  });

  it('stops its workers at once on a second signal (exit without draining)', async () => {
    service = await start();
    const client = new KnnClient({ endpoint: service.url });
    await client.build(slow);
    await service.waitFor(/"msg":"job building"/);
    const workers = service.workerPids();
    process.kill(service.pid, 'SIGTERM');
    await service.waitFor(/"msg":"signal received: draining"/);
    process.kill(service.pid, 'SIGTERM');
    expect(await service.exited).toEqual([1, null]);
    expect(await allGone(workers, 5000)).toBeGreaterThanOrEqual(0);
  });

  it('fails only the job whose worker was killed (kill -9), and builds it again when sent again', async () => {
    service = await start();
    const client = new KnnClient({ endpoint: service.url });
    const id = await client.build(slow);
    await service.waitFor(/"msg":"job building"/);
    process.kill(service.workerPids()[0]!, 'SIGKILL');
    const failed = await client.poll(id, { intervalMs: 100, timeoutMs: 30_000 });
    expect(failed.task_status).toBe('FAILED_INDEX_BUILD');
    expect(failed.error_message).toMatch(/killed \(SIGKILL\) while building/);

    const other = await client.poll(await client.build(small), { intervalMs: 100, timeoutMs: 60_000 });
    expect(other.task_status).toBe('COMPLETED_INDEX_BUILD'); // the service lives on
  });

  it('fails a job whose .knndid is a FIFO at once, and leaves no worker behind', async () => {
    const fifo = writeLocalSegment(root, 'c', 'seg/fifo', 100, 8);
    rmSync(path.join(root, 'c', 'seg', 'fifo.knndid'));
    execFileSync('mkfifo', [path.join(root, 'c', 'seg', 'fifo.knndid')]);
    service = await start();
    const client = new KnnClient({ endpoint: service.url });
    const failed = await client.poll(await client.build(fifo), { intervalMs: 100, timeoutMs: 20_000 });
    expect(failed.error_message).toMatch(
      /local:\/\/c\/seg\/fifo.knndid is not a regular file \(it is a FIFO\)/,
    );
    expect(await allGone(service.workerPids(), 5000)).toBeGreaterThanOrEqual(0);
  });

  it('removes temporary files and spool folders that killed workers left, at start-up', async () => {
    const stale = path.join(root, 'c', 'seg', '.knn-tmp-0123456789abcdef-01234567');
    const spool = path.join(root, 'spool');
    const spooled = path.join(spool, 'index-AbCdEf');
    mkdirSync(spooled, { recursive: true });
    writeFileSync(path.join(spooled, 'x.faiss'), 'partial index');
    writeFileSync(stale, 'partial index');
    const old = Date.now() / 1000 - 3600;
    for (const f of [stale, spooled]) utimesSync(f, old, old);
    service = await start({ INDEX_SPOOL_DIR: spool });
    await service.waitFor(/"removed":2,"files":1,"folders":1,[^\n]*"msg":"removed stale temporary files"/);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(spooled)).toBe(false);
  });

  // Before, the default CPU_MEMORY_LIMIT (32 GiB) admitted a job this machine could never hold (then OOM-killed).
  const roomy = os.totalmem() > 31 * 2 ** 30;
  it.skipIf(roomy)(
    roomy
      ? 'caps CPU_MEMORY_LIMIT at the host memory (skipped: this machine has more than 31 GiB)'
      : 'caps CPU_MEMORY_LIMIT at the host memory, logs it, and refuses (507) a job over it',
    async () => {
      service = await start();
      const started = await service.waitFor(/"cpuMemoryLimitGiB":([\d.]+)/);
      expect(Number(started[1]) * 2 ** 30).toBeLessThan(os.totalmem());
      expect(service.output()).toContain('CPU_MEMORY_LIMIT is more than this host has: capped');
      // ~30 GiB estimated (vectors, graph, the CPU builder's work): under the old 32 GiB default, over this machine.
      const res = await fetch(`${service.url}/_build`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ ...small, doc_count: 3_900_000, dimension: 2000 }),
      });
      expect(res.status).toBe(507);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/over CPU_MEMORY_LIMIT/);
    },
  );
});
