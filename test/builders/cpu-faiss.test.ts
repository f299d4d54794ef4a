// CPU graphs end to end: built by the CPU builder, written by the service's writer in the layout the format
// policy picks, then loaded and searched by real Faiss (1.15, and Debian's 1.7.3 for the layout old clusters
// read) with held-out queries, scored against exact k-NN of the .knnvec (test/python/faiss_check.py recall).
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CpuBuilder } from '../../src/builders/cpu.js';
import { chooseFormat } from '../../src/faiss-format/policy.js';
import type { DataType, SpaceType, VectorArray } from '../../src/vectors/types.js';
import { tempDir, unlessPython, writeIndexFile } from '../helpers/faiss-files.js';
import {
  FAISS_115_PYTHON,
  FAISS_173_PYTHON,
  REPO_ROOT,
  faissPythonAvailable,
  runPythonJson,
} from '../helpers/python.js';
import {
  clusteredBinary,
  clusteredFloat,
  normalizeRows,
  splitRows,
  toFloat16Array,
  toInt8,
} from '../helpers/synthetic.js';

const N = 3000;
const QUERIES = 100;
const D = 32;
const BITS = 256;
const CHECK = path.join(REPO_ROOT, 'test/python/faiss_check.py');

interface Case {
  name: string;
  dataType: DataType;
  space: SpaceType;
  /** false: a base-level-only graph in the GPU builder's layout (IHNc). */
  hierarchical: boolean;
  /** Also check with Debian's Faiss 1.7.3 (IHNf is what every k-NN version reads). */
  faiss173?: boolean;
}

const CASES: Case[] = [
  { name: 'float l2 -> IHNf', dataType: 'float', space: 'l2', hierarchical: true, faiss173: true },
  { name: 'float inner product -> IHNf', dataType: 'float', space: 'innerproduct', hierarchical: true },
  { name: 'float l2, base level only -> IHNc', dataType: 'float', space: 'l2', hierarchical: false },
  { name: 'half_float l2 -> IHNs (fp16)', dataType: 'half_float', space: 'l2', hierarchical: true },
  { name: 'byte l2 -> IHNs (int8)', dataType: 'byte', space: 'l2', hierarchical: true },
  { name: 'binary hamming -> IBHf', dataType: 'binary', space: 'hamming', hierarchical: true },
];

/** The .knnvec k-NN would upload (half_float as float32), the stored vectors, and raw held-out queries. */
function data(c: Case): { wire: ArrayBufferView; stored: VectorArray; queries: ArrayBufferView } {
  if (c.dataType === 'binary') {
    const [base, queries] = splitRows(
      clusteredBinary({ count: N + QUERIES, dimension: BITS, seed: 4 }),
      BITS / 8,
      N,
    );
    return { wire: base, stored: base, queries };
  }
  const all = clusteredFloat({ count: N + QUERIES, dimension: D, seed: 4 });
  if (c.space === 'innerproduct') normalizeRows(all, D);
  if (c.dataType === 'byte') {
    const [base, queries] = splitRows(toInt8(all), D, N);
    return { wire: base, stored: base, queries: Float32Array.from(queries) };
  }
  const [base, queries] = splitRows(all, D, N);
  return { wire: base, stored: c.dataType === 'half_float' ? toFloat16Array(base) : base, queries };
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

type Recall = { recall: number; unknown_ids: number };
type Result = { ok: true; result: Recall } | { ok: false; error: string };

describe.skipIf(!faissPythonAvailable())(
  `CPU graphs searched by Faiss${unlessPython(faissPythonAvailable(), FAISS_115_PYTHON)}`,
  () => {
    const tmp = tempDir('cpu-faiss-');
    const tasks115: Record<string, unknown>[] = [];
    const tasks173: Record<string, unknown>[] = [];
    let results115: Result[] = [];
    let results173: Result[] = [];

    beforeAll(async () => {
      const builder = new CpuBuilder({ threads: 2 });
      const ids = Int32Array.from({ length: N }, (_, i) => 10 + 2 * i);
      for (const c of CASES) {
        const { wire, stored, queries } = data(c);
        const dimension = c.dataType === 'binary' ? BITS : D;
        const vectors = { dataType: c.dataType, dimension, count: N, chunks: [stored] };
        const params = {
          spaceType: c.space,
          m: 16,
          efConstruction: 100,
          efSearch: 100,
          hierarchical: c.hierarchical,
        };
        const { graph } = await builder.build(vectors, params);
        const format = chooseFormat({ dataType: c.dataType, builder: c.hierarchical ? 'cpu' : 'gpu' });
        expect(format.needsHierarchicalGraph, c.name).toBe(c.hierarchical);
        const file = path.join(tmp.dir, `${tasks115.length}.faiss`);
        const prefix = file.slice(0, -'.faiss'.length);
        await writeIndexFile(
          { format, graph, vectors, ids, spaceType: c.space, efConstruction: 100, efSearch: 100 },
          file,
        );
        writeFileSync(`${prefix}.knnvec`, bytesOf(wire));
        writeFileSync(`${prefix}.knndid`, bytesOf(ids));
        writeFileSync(`${prefix}.queries`, bytesOf(queries));
        const task = {
          cmd: 'recall',
          file,
          vectors: `${prefix}.knnvec`,
          doc_ids: `${prefix}.knndid`,
          queries: `${prefix}.queries`,
          data_type: c.dataType,
          dimension,
          space: c.space,
          k: 10,
          ef: 100,
        };
        tasks115.push(task);
        if (c.faiss173) tasks173.push(task);
      }
      [results115, results173] = await Promise.all([
        runPythonJson<Result[]>(FAISS_115_PYTHON, CHECK, ['batch'], JSON.stringify(tasks115)),
        runPythonJson<Result[]>(FAISS_173_PYTHON, CHECK, ['batch'], JSON.stringify(tasks173)),
      ]);
    });

    afterAll(() => tmp.remove());

    it.each(CASES.map((c, i) => [c.name, i] as const))(
      '%s: Faiss 1.15 loads it, recall@10 >= 0.95',
      (_n, i) => {
        const r = results115[i]!;
        expect(r).toMatchObject({ ok: true });
        const { recall, unknown_ids } = (r as { result: Recall }).result;
        expect(unknown_ids).toBe(0);
        expect(recall).toBeGreaterThanOrEqual(0.95);
      },
    );

    it('float l2 -> IHNf: Faiss 1.7.3 (older k-NN) loads it, recall@10 >= 0.95', () => {
      expect(results173).toHaveLength(1);
      expect(results173[0]).toMatchObject({ ok: true });
      expect((results173[0] as { result: Recall }).result.recall).toBeGreaterThanOrEqual(0.95);
    });
  },
);
