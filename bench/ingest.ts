// Ingest rate per data type: a `.knnvec` read from the local store (page cache warm) and parsed into the vectors a
// builder gets, as the job's download phase does it, plus the writer's pass over the stored vectors (fp16 and int8
// codes are made there or on the way in). half_float and byte against float in one run, on the same vectors:
// the ratio is what to read (absolute rates here are a shared 2-core machine's).
//
//   npm run bench -- ingest [--count 500000] [--dimension 128] [--repeat 3]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { faissIndexChunks } from '../src/faiss-format/writer.js';
import { chooseFormat, FORMAT_POLICIES } from '../src/faiss-format/policy.js';
import { LocalObjectStore } from '../src/storage/local.js';
import { resolveStorageSettings } from '../src/storage/settings.js';
import { knnvecReadOptions, parseVectorBlob } from '../src/vectors/knnvec.js';
import type { DataType, VectorSet } from '../src/vectors/types.js';
import { clusteredFloat, toInt8 } from '../test/helpers/synthetic.js';
import { type Row, printTable, writeResults } from './report.js';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '500000' },
    dimension: { type: 'string', default: '128' },
    repeat: { type: 'string', default: '3' },
  },
});
const n = Number(args.count);
const d = Number(args.dimension);
const repeat = Number(args.repeat);

const root = mkdtempSync(path.join(os.tmpdir(), 'ingest-'));
mkdirSync(path.join(root, 'c'));
const store = new LocalObjectStore(resolveStorageSettings({ kind: 'local', localRoot: root }));
const floats = clusteredFloat({ count: n, dimension: d, seed: 3 });
writeFileSync(path.join(root, 'c', 'float.knnvec'), new Uint8Array(floats.buffer));
writeFileSync(path.join(root, 'c', 'byte.knnvec'), new Uint8Array(toInt8(floats).buffer));

/** A graph the writer accepts without a build: every node on level 0 with no neighbours. */
function emptyGraph(count: number) {
  return {
    M: 16,
    levels: new Int32Array(count).fill(1),
    neighbors: new Int32Array(count * 32).fill(-1),
    entryPoint: 0,
    maxLevel: 0,
    cumNeighborPerLevel: Int32Array.of(0, 32),
    assignProbas: Float64Array.of(1),
  };
}

async function ingest(type: DataType): Promise<{ read: number; write: number }> {
  const spec = { dataType: type, dimension: d, count: n };
  const file = type === 'byte' ? 'byte.knnvec' : 'float.knnvec';
  let t = performance.now();
  const blob = await store.read({ container: 'c', key: file }, knnvecReadOptions(spec));
  const vectors: VectorSet = parseVectorBlob(blob, spec);
  const read = (performance.now() - t) / 1000;
  const format = chooseFormat(
    { dataType: type, builder: 'cpu', skipStoredVectors: false },
    FORMAT_POLICIES.compatible,
  );
  const input = {
    format,
    graph: emptyGraph(n),
    vectors,
    ids: Int32Array.from({ length: n }, (_, i) => i),
    spaceType: 'l2' as const,
    efConstruction: 100,
    efSearch: 100,
  };
  t = performance.now();
  let bytes = 0;
  for (const chunk of faissIndexChunks(input)) bytes += chunk.byteLength;
  return { read, write: bytes > 0 ? (performance.now() - t) / 1000 : 0 };
}

const cases: { name: string; type: DataType; native: boolean }[] = [
  { name: 'float', type: 'float', native: true },
  { name: 'half_float (native fp16)', type: 'half_float', native: true },
  { name: 'half_float (JS fp16)', type: 'half_float', native: false },
  { name: 'byte (native int8 codes)', type: 'byte', native: true },
  { name: 'byte (JS int8 codes)', type: 'byte', native: false },
];
const best: Record<string, { read: number; write: number }> = {};
try {
  for (let r = 0; r < repeat; r++) {
    for (const c of cases) {
      if (c.native) delete process.env.KNN_NATIVE_CONVERT;
      else process.env.KNN_NATIVE_CONVERT = '0';
      const got = await ingest(c.type);
      const prev = best[c.name];
      best[c.name] = prev
        ? { read: Math.min(prev.read, got.read), write: Math.min(prev.write, got.write) }
        : got;
    }
  }
} finally {
  delete process.env.KNN_NATIVE_CONVERT;
  rmSync(root, { recursive: true, force: true });
}
const floatTotal = best.float!.read + best.float!.write;
const rows: Row[] = cases.map((c) => {
  const b = best[c.name]!;
  return {
    data: c.name,
    vectors: n,
    dimension: d,
    read_parse_s: Math.round(b.read * 1000) / 1000,
    write_pass_s: Math.round(b.write * 1000) / 1000,
    Mvectors_per_s: Math.round((n / (b.read + b.write) / 1e6) * 100) / 100,
    rate_vs_float: Math.round((floatTotal / (b.read + b.write)) * 100) / 100,
  };
});
printTable(`Ingest (local store read + parse, then the writer's pass), best of ${repeat}`, rows);
writeResults('ingest', { rows, repeat });
