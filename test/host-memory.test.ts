// CPU_MEMORY_LIMIT is capped at what the host really has: the machine's memory or a cgroup limit (v2 memory.max,
// v1 memory.limit_in_bytes), on the process's own cgroup or a parent.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { hostMemoryLimit, memoryBudget } from '../src/host-memory.js';

const GIB = 2 ** 30;

describe('host memory limit', () => {
  let root: string;
  const put = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'knn-cgroup-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('is the machine memory without a cgroup limit ("max", or v1 unlimited)', () => {
    put('memory.max', 'max\n');
    put('memory/memory.limit_in_bytes', '9223372036854771712\n');
    const limit = hostMemoryLimit({
      totalBytes: 23 * GIB,
      procSelfCgroup: '4:memory:/\n0::/\n',
      cgroupRoot: root,
    });
    expect(limit).toEqual({ bytes: 23 * GIB, source: 'the machine' });
  });

  it("takes cgroup v2 memory.max of the process's cgroup or a parent, whichever is smallest", () => {
    put('system.slice/memory.max', `${8 * GIB}\n`);
    put('system.slice/knn.service/memory.max', 'max\n');
    const limit = hostMemoryLimit({
      totalBytes: 64 * GIB,
      procSelfCgroup: '0::/system.slice/knn.service\n',
      cgroupRoot: root,
    });
    expect(limit).toEqual({ bytes: 8 * GIB, source: `cgroup ${path.join(root, 'system.slice/memory.max')}` });
  });

  it('takes cgroup v1 memory.limit_in_bytes', () => {
    put('memory/docker/abc/memory.limit_in_bytes', `${4 * GIB}\n`);
    const limit = hostMemoryLimit({
      totalBytes: 64 * GIB,
      procSelfCgroup: '9:cpu,memory:/docker/abc\n',
      cgroupRoot: root,
    });
    expect(limit.bytes).toBe(4 * GIB);
  });

  it('caps the budget at the host less a reserve, and leaves a smaller one alone', () => {
    expect(memoryBudget(32 * GIB, { bytes: 23 * GIB, source: 'the machine' })).toEqual({
      bytes: 22 * GIB,
      capped: true,
    });
    expect(memoryBudget(4 * GIB, { bytes: 4 * GIB, source: 'cgroup' })).toEqual({
      bytes: Math.floor(3.6 * GIB),
      capped: true,
    });
    expect(memoryBudget(8 * GIB, { bytes: 23 * GIB, source: 'the machine' })).toEqual({
      bytes: 8 * GIB,
      capped: false,
    });
  });

  it('finds this machine at most as large as os.totalmem()', () => {
    expect(hostMemoryLimit().bytes).toBeLessThanOrEqual(os.totalmem());
  });
});
