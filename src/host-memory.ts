// How much memory this process can really use: the machine's, or less when a cgroup limits it (containers,
// systemd's MemoryMax). CPU_MEMORY_LIMIT is capped at it, so a job that cannot fit is refused at admission (507)
// instead of being admitted and then killed by the kernel's OOM killer.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface MemoryLimit {
  bytes: number;
  /** Where the number comes from, for the start-up log. */
  source: string;
}

export interface HostMemoryOptions {
  /** For tests: the machine's memory, /proc/self/cgroup's text, and the cgroup file system's root. */
  totalBytes?: number;
  procSelfCgroup?: string;
  cgroupRoot?: string;
}

/** Values at or above this mean "no limit" (cgroup v1 writes a page-rounded 2^63-1). */
const UNLIMITED = 2 ** 60;

/** The smallest of the machine's memory and every cgroup memory limit on this process's cgroup path. */
export function hostMemoryLimit(o: HostMemoryOptions = {}): MemoryLimit {
  let best: MemoryLimit = { bytes: o.totalBytes ?? os.totalmem(), source: 'the machine' };
  const cgroupRoot = o.cgroupRoot ?? '/sys/fs/cgroup';
  const membership = o.procSelfCgroup ?? readText('/proc/self/cgroup') ?? '';
  for (const line of membership.split('\n')) {
    const [, controllers, cgroupPath] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (controllers === undefined || cgroupPath === undefined) continue;
    // cgroup v2 ("0::/path"): memory.max; v1 ("N:memory:/path" or "N:cpu,memory:/path"): memory.limit_in_bytes.
    const [dir, file] =
      controllers === ''
        ? [cgroupRoot, 'memory.max']
        : controllers.split(',').includes('memory')
          ? [path.join(cgroupRoot, 'memory'), 'memory.limit_in_bytes']
          : [];
    if (!dir || !file) continue;
    // The process's own cgroup and each parent (inside a container the path is often "/": the root's file).
    for (let p = path.posix.normalize(`/${cgroupPath}`); ; p = path.posix.dirname(p)) {
      const limit = Number(readText(path.join(dir, p, file))?.trim());
      if (Number.isFinite(limit) && limit > 0 && limit < UNLIMITED && limit < best.bytes) {
        best = { bytes: limit, source: `cgroup ${path.join(dir, p, file)}` };
      }
      if (p === '/') break;
    }
  }
  return best;
}

/**
 * The host memory budget in force: CPU_MEMORY_LIMIT, at most what the host really has less a reserve for the
 * service process itself and the system (10%, at most 1 GiB).
 */
export function memoryBudget(requestedBytes: number, limit: MemoryLimit): { bytes: number; capped: boolean } {
  const usable = Math.floor(limit.bytes - Math.min(2 ** 30, limit.bytes * 0.1));
  return requestedBytes > usable ? { bytes: usable, capped: true } : { bytes: requestedBytes, capped: false };
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
