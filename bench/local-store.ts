// The local store's reads, copies and writes against `dd`/`cp` of the same file, on the same machine, in one run
// (ratios are what to read; absolute rates only from a quiet machine):
//   read, page cache warm:  dd if=F of=/dev/null bs=16M                vs  LocalObjectStore.read (addon threads),
//                           and the same without transparent huge pages on the fresh blob, and the reader into
//                           memory it filled before (dd reuses one buffer: no first-touch page faults), and the
//                           store's reads before the addon's (Node fs, 4 in flight)
//   read, cold:             dd if=F iflag=direct bs=16M (the device)   vs  LocalObjectStore.read after the file's
//                           pages were dropped (dd iflag=nocache count=0: no root needed), buffered and O_DIRECT
//   copy + fsync:           dd if=F of=G bs=16M conv=fsync, cp F G + sync G   vs  LocalObjectStore.writeComposed
//                           (a 4 KiB + 17 B head, the whole file copied from F, a 1 MiB tail; parallel
//                           copy_file_range), and the same with one copy thread
//   write + fsync:          dd if=/dev/zero of=F bs=16M conv=fsync     vs  LocalObjectStore.write of the same bytes
// The ratio column is dd's (or cp's) time / ours: above 1 is faster than dd.
//
//   npm run bench -- local-store [--mib 256] [--dir /tmp] [--runs 2] [--threads N] [--gpu-warm]
// On the GPU machine: scripts/gpu-check.sh local-io (3 GiB, the size of a 1M x 768 float .knnvec).
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';

import { LocalObjectStore } from '../src/storage/local.js';
import { nativeFileReader, nativeRangeCopier } from '../src/storage/local-io.js';
import { resolveStorageSettings } from '../src/storage/settings.js';
import type { HostBlob } from '../src/storage/types.js';
import { gpuWarmUp } from '../src/builders/native.js';
import { type Row, printTable, writeResults } from './report.js';

const MiB = 2 ** 20;
const { values: args } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    dir: { type: 'string', default: os.tmpdir() },
    runs: { type: 'string', default: '2' },
    threads: { type: 'string' },
    'gpu-warm': { type: 'boolean', default: false },
  },
});
// --gpu-warm: this process first sets up GPU 0 (CUDA context, cuBLAS, pinned staging) as a warm build worker
// does, to see whether that changes the reads' rate.
if (args['gpu-warm']) console.log(`GPU 0 warmed up in ${(await gpuWarmUp(0)).toFixed(2)} s`);
const mib = Number(args.mib);
const runs = Number(args.runs);
const threads = args.threads === undefined ? undefined : Number(args.threads);
if (!(mib >= 1) || !(runs >= 1)) throw new Error('--mib and --runs must be positive numbers');
const bytes = Math.round(mib * MiB);
const root = mkdtempSync(path.join(args.dir, 'local-store-bench-'));
mkdirSync(path.join(root, 'c'));
const file = (key: string) => path.join(root, 'c', key);
const at = (key: string) => ({ container: 'c', key });
const settings = resolveStorageSettings({ kind: 'local', localRoot: root });
const tuning = threads === undefined ? {} : { threads };
const store = new LocalObjectStore(settings, nativeRangeCopier(tuning), nativeFileReader(tuning));
const oneThread = new LocalObjectStore(settings, nativeRangeCopier({ threads: 1 }), nativeFileReader(tuning));
const smallPages = new LocalObjectStore(
  settings,
  undefined,
  nativeFileReader({ ...tuning, hugePages: false }),
);
const direct = new LocalObjectStore(settings, undefined, nativeFileReader({ ...tuning, direct: true }));
const nodeFs = new LocalObjectStore(settings, undefined, null); // the reads before the addon's
if (!nativeFileReader()) console.log('note: the native addon is not built: reads and copies use Node fs');

const seconds = async (fn: () => unknown) => {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
};
const run = (cmd: string, ...operands: string[]) =>
  execFileSync(cmd, operands, { stdio: ['ignore', 'ignore', 'pipe'] });
const dd = (...operands: string[]) => run('dd', ...operands, 'bs=16M', 'status=none');
/** Drops the file's pages from the page cache (POSIX_FADV_DONTNEED through GNU dd; no root needed). */
const dropCache = (f: string) => dd(`if=${f}`, 'iflag=nocache', 'count=0');
/** Whether `dd iflag=direct` works on this file system (tmpfs, for one, refuses O_DIRECT). */
const directWorks = (() => {
  try {
    dd('if=/dev/zero', `of=${file('probe')}`, 'count=1', 'oflag=direct');
    dd(`if=${file('probe')}`, 'of=/dev/null', 'iflag=direct');
    return true;
  } catch {
    return false;
  } finally {
    rmSync(file('probe'), { force: true });
  }
})();

type Key =
  | 'ddWrite'
  | 'storeWrite'
  | 'ddWarm'
  | 'storeWarm'
  | 'storeWarm4k'
  | 'readerTouched'
  | 'nodeWarm'
  | 'storeDirect'
  | 'ddDirect'
  | 'ddCold'
  | 'storeCold';
type CopyKey = 'ddCopy' | 'cpCopy' | 'storeCopy' | 'storeCopy1';
const best: Record<Key | CopyKey, number> = {
  ddWrite: Infinity,
  storeWrite: Infinity,
  ddWarm: Infinity,
  storeWarm: Infinity,
  storeWarm4k: Infinity,
  readerTouched: Infinity,
  nodeWarm: Infinity,
  storeDirect: Infinity,
  ddDirect: Infinity,
  ddCold: Infinity,
  storeCold: Infinity,
  ddCopy: Infinity,
  cpCopy: Infinity,
  storeCopy: Infinity,
  storeCopy1: Infinity,
};
const record = (key: keyof typeof best, s: number) => (best[key] = Math.min(best[key], s));
const methods = new Set<string>();

async function composedCopy(target: LocalObjectStore, key: string, blob: HostBlob): Promise<void> {
  const head = new Uint8Array(4096 + 17); // an index's header + graph: not block-aligned, as in a real index
  const result = await target.writeComposed(at(key), {
    before: [head],
    beforeBytes: head.length,
    copy: { source: at('src.knnvec'), sourceVersion: blob.version!, start: 0, bytes, local: blob.chunks },
    after: [new Uint8Array(MiB)],
    afterBytes: MiB,
  });
  methods.add(result.reason ? `${result.path}: ${result.reason}` : result.path);
}

try {
  for (let r = 0; r < runs; r++) {
    record(
      'ddWrite',
      await seconds(() =>
        dd('if=/dev/zero', `of=${file('src.knnvec')}`, `count=${bytes}`, 'iflag=count_bytes', 'conv=fsync'),
      ),
    );
    // Warm: the file was just written (and is read once more by dd first).
    record('ddWarm', await seconds(() => dd(`if=${file('src.knnvec')}`, 'of=/dev/null')));
    let blob: HostBlob | undefined;
    record('storeWarm', await seconds(async () => (blob = await store.read(at('src.knnvec')))));
    if (blob!.byteLength !== bytes) throw new Error(`read ${blob!.byteLength} bytes, expected ${bytes}`);
    blob = undefined;
    record('storeWarm4k', await seconds(() => smallPages.read(at('src.knnvec'))));
    record('nodeWarm', await seconds(() => nodeFs.read(at('src.knnvec'))));
    // The reader alone into memory it has filled before: what a read costs without first-touch page faults.
    const reader = nativeFileReader(tuning);
    if (reader) {
      const touched = (await store.read(at('src.knnvec'))).chunks;
      const fd = openSync(file('src.knnvec'), 'r');
      try {
        record('readerTouched', await seconds(() => reader(fd, 0, touched)));
      } finally {
        closeSync(fd);
      }
    }
    // Cold: the file's pages dropped before each reader.
    if (directWorks)
      record('ddDirect', await seconds(() => dd(`if=${file('src.knnvec')}`, 'of=/dev/null', 'iflag=direct')));
    dropCache(file('src.knnvec'));
    record('ddCold', await seconds(() => dd(`if=${file('src.knnvec')}`, 'of=/dev/null')));
    dropCache(file('src.knnvec'));
    record('storeCold', await seconds(() => store.read(at('src.knnvec'))));
    dropCache(file('src.knnvec'));
    record('storeDirect', await seconds(() => direct.read(at('src.knnvec'))));
    // Copies of the (now warm) file, each to a fresh file, each made durable, each removed after (disk space).
    const copyTo = async (key: CopyKey | 'storeWrite', name: string, fn: () => unknown) => {
      record(key, await seconds(fn));
      rmSync(file(name), { force: true });
    };
    await copyTo('ddCopy', 'dd.copy', () =>
      dd(`if=${file('src.knnvec')}`, `of=${file('dd.copy')}`, 'conv=fsync'),
    );
    await copyTo('cpCopy', 'cp.copy', () => {
      run('cp', file('src.knnvec'), file('cp.copy'));
      run('sync', file('cp.copy'));
    });
    const source = await store.read(at('src.knnvec')); // its version (the copy checks the source is unchanged)
    await copyTo('storeCopy', 'ours.faiss', () => composedCopy(store, 'ours.faiss', source));
    await copyTo('storeCopy1', 'ours1.faiss', () => composedCopy(oneThread, 'ours1.faiss', source));
    await copyTo('storeWrite', 'out.faiss', () =>
      store.write(at('out.faiss'), Readable.from(source.chunks, { objectMode: false })),
    );
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

const GB = bytes / 1e9;
const rate = (s: number) => (Number.isFinite(s) ? Math.round((GB / s) * 100) / 100 : null);
const ratio = (base: number, ours: number) =>
  Number.isFinite(base) ? Math.round((base / ours) * 100) / 100 : null;
const row = (op: string, baseline: string, base: number, ours: string, mine: number): Row => ({
  op,
  baseline,
  baseline_GB_s: rate(base),
  ours,
  ours_GB_s: rate(mine),
  ours_vs_baseline: ratio(base, mine),
});
const copied = [...methods].join(' | ');
const rows: Row[] = [
  row('read, page cache warm', 'dd bs=16M', best.ddWarm, 'LocalObjectStore.read', best.storeWarm),
  row(
    'read, page cache warm',
    'dd bs=16M',
    best.ddWarm,
    'read, 4 KiB pages (hugePages: false)',
    best.storeWarm4k,
  ),
  row(
    'read, page cache warm',
    'dd bs=16M',
    best.ddWarm,
    'reader into touched memory (no page faults)',
    best.readerTouched,
  ),
  row(
    'read, page cache warm',
    'dd bs=16M',
    best.ddWarm,
    'Node fs reads, 4 in flight (before)',
    best.nodeWarm,
  ),
  row(
    'read, cold',
    directWorks ? 'dd bs=16M iflag=direct' : 'dd iflag=direct (refused here)',
    best.ddDirect,
    'LocalObjectStore.read',
    best.storeCold,
  ),
  row('read, cold', 'dd bs=16M', best.ddCold, 'LocalObjectStore.read', best.storeCold),
  row(
    'read, cold',
    'dd bs=16M iflag=direct',
    best.ddDirect,
    'read, O_DIRECT (direct: true)',
    best.storeDirect,
  ),
  row('copy + fsync', 'dd bs=16M conv=fsync', best.ddCopy, 'writeComposed', best.storeCopy),
  row('copy + fsync', 'cp + sync', best.cpCopy, 'writeComposed', best.storeCopy),
  row('copy + fsync', 'dd bs=16M conv=fsync', best.ddCopy, 'writeComposed, 1 thread', best.storeCopy1),
  row('write + fsync', 'dd bs=16M conv=fsync', best.ddWrite, 'LocalObjectStore.write', best.storeWrite),
];
// What the rates depend on: the file system of --dir and the transparent huge page mode.
const fsType = (() => {
  try {
    return execFileSync('stat', ['-f', '-c', '%T', args.dir]).toString().trim();
  } catch {
    return 'unknown';
  }
})();
const thp = (() => {
  try {
    return (
      /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'unknown'
    );
  } catch {
    return 'unknown';
  }
})();
printTable(
  `Local store vs dd/cp: ${mib} MiB file on ${args.dir} (${fsType}, THP ${thp}, ${os.cpus().length} cores), ` +
    `best of ${runs}; copy path: ${copied}`,
  rows,
);
writeResults('local-store', {
  rows,
  fsType,
  transparentHugePages: thp,
  mib,
  dir: args.dir,
  runs,
  threads: threads ?? 'default',
  copyPath: copied,
  directWorks,
  seconds: best,
});
