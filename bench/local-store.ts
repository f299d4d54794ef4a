// The local store's read and write rate against `dd` on the same file, same machine, same run (page cache as it
// is: run it twice to see both warm; the ratio is what to read):
//   read:  LocalObjectStore.read of a .knnvec-sized file   vs  dd if=FILE of=/dev/null bs=16M
//   write: LocalObjectStore.write of the same bytes (fsync) vs  dd if=/dev/zero of=FILE bs=16M conv=fsync
//
//   npm run bench -- local-store [--mib 1024] [--dir /tmp] [--runs 2]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';

import { LocalObjectStore } from '../src/storage/local.js';
import { resolveStorageSettings } from '../src/storage/settings.js';
import { type Row, printTable, writeResults } from './report.js';

const MiB = 2 ** 20;
const { values: args } = parseArgs({
  options: {
    mib: { type: 'string', default: '1024' },
    dir: { type: 'string', default: os.tmpdir() },
    runs: { type: 'string', default: '2' },
  },
});
const mib = Number(args.mib);
const runs = Number(args.runs);
const root = mkdtempSync(path.join(args.dir, 'local-store-bench-'));
mkdirSync(path.join(root, 'c'));
const file = path.join(root, 'c', 'vectors.knnvec');
const store = new LocalObjectStore(resolveStorageSettings({ kind: 'local', localRoot: root }));

const seconds = async (fn: () => unknown) => {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
};
const dd = (...operands: string[]) => execFileSync('dd', [...operands, 'bs=16M', 'status=none']);

const best = { ddWrite: Infinity, storeWrite: Infinity, ddRead: Infinity, storeRead: Infinity };
try {
  for (let r = 0; r < runs; r++) {
    best.ddWrite = Math.min(
      best.ddWrite,
      await seconds(() => dd('if=/dev/zero', `of=${file}`, `count=${mib / 16}`, 'conv=fsync')),
    );
    best.ddRead = Math.min(best.ddRead, await seconds(() => dd(`if=${file}`, 'of=/dev/null')));
    let bytes = 0;
    best.storeRead = Math.min(
      best.storeRead,
      await seconds(async () => {
        bytes = (await store.read({ container: 'c', key: 'vectors.knnvec' }, { alignBytes: 512 })).byteLength;
      }),
    );
    const blob = await store.read({ container: 'c', key: 'vectors.knnvec' });
    best.storeWrite = Math.min(
      best.storeWrite,
      await seconds(() =>
        store.write({ container: 'c', key: 'out.faiss' }, Readable.from(blob.chunks, { objectMode: false })),
      ),
    );
    if (bytes !== mib * MiB) throw new Error(`read ${bytes} bytes, expected ${mib * MiB}`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
const rate = (s: number) => Math.round(mib / s);
const rows: Row[] = [
  {
    op: 'read',
    MiB: mib,
    dd_MiB_s: rate(best.ddRead),
    store_MiB_s: rate(best.storeRead),
    store_vs_dd: Math.round((best.ddRead / best.storeRead) * 100) / 100,
  },
  {
    op: 'write (fsync)',
    MiB: mib,
    dd_MiB_s: rate(best.ddWrite),
    store_MiB_s: rate(best.storeWrite),
    store_vs_dd: Math.round((best.ddWrite / best.storeWrite) * 100) / 100,
  },
];
printTable(`Local store vs dd on ${args.dir}, best of ${runs}`, rows);
writeResults('local-store', { rows, dir: args.dir });
