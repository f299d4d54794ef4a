// Real Faiss judges our files: Faiss 1.15 (.venv-faiss) loads every layout we write, reports the expected types,
// d, ntotal, metric and ids, finds the planted nearest neighbours, and writes the index back byte for byte.
// Debian's Faiss 1.7.3 (old clusters) loads and searches the IHNf files (and fp16 IHNs).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { FaissFormat } from '../../src/faiss-format/formats.js';
import type { HnswGraph } from '../../src/faiss-format/hnsw-graph.js';
import { faissIndexSize } from '../../src/faiss-format/writer.js';
import type { DataType, SpaceType } from '../../src/vectors/types.js';
import type { TestData } from '../helpers/faiss-files.js';
import {
  baseLevelGraph,
  indexInput,
  plantedQueries,
  tempDir,
  testData,
  twoLevelGraph,
  unlessPython,
  writeIndexFile,
} from '../helpers/faiss-files.js';
import {
  FAISS_115_PYTHON,
  FAISS_173_PYTHON,
  REPO_ROOT,
  faissPythonAvailable,
  runPythonJson,
} from '../helpers/python.js';

const CHECK = path.join(REPO_ROOT, 'test/python/faiss_check.py');
const N = 300;
const M = 8;
const PICKS = [0, 1, 17, 123, 250, 299];

interface Variant {
  name: string;
  dataType: DataType;
  dimension: number;
  space?: SpaceType;
  format: FaissFormat;
  graph: 'base' | 'two-level' | 'base-with-entry';
  classes: (string | null)[];
  /** Faiss rewrites it differently (and why). */
  rewriteDiffers?: string;
  /** Search from this node as a plain HNSW instead of Faiss's randomized base-level search (and why). */
  searchEntry?: { node: number; why: string };
}

const F32 = 'IndexFlatL2';
const VARIANTS: Variant[] = [
  {
    name: 'IHNf-l2',
    dataType: 'float',
    dimension: 16,
    format: { index: 'IHNf', storage: 'flat' },
    graph: 'two-level',
    classes: ['IndexIDMap', 'IndexHNSWFlat', F32],
  },
  {
    name: 'IHNf-ip',
    dataType: 'float',
    dimension: 16,
    space: 'innerproduct',
    format: { index: 'IHNf', storage: 'flat' },
    graph: 'two-level',
    classes: ['IndexIDMap', 'IndexHNSWFlat', 'IndexFlatIP'],
  },
  {
    name: 'IHNf-single-level',
    dataType: 'float',
    dimension: 16,
    format: { index: 'IHNf', storage: 'flat' },
    graph: 'base-with-entry',
    classes: ['IndexIDMap', 'IndexHNSWFlat', F32],
  },
  {
    name: 'IHNc',
    dataType: 'float',
    dimension: 16,
    format: { index: 'IHNc', storage: 'flat' },
    graph: 'base',
    classes: ['IndexIDMap', 'IndexHNSWCagra', F32],
    rewriteDiffers:
      'Faiss 1.12+ writes every IndexHNSWCagra as IHc2 (adds numeric_type); the rewrite must equal our IHc2 file',
  },
  {
    name: 'IHc2-f32',
    dataType: 'float',
    dimension: 16,
    format: { index: 'IHc2', storage: 'flat' },
    graph: 'base',
    classes: ['IndexIDMap', 'IndexHNSWCagra', F32],
  },
  {
    name: 'IHc2-fp16',
    dataType: 'half_float',
    dimension: 16,
    format: { index: 'IHc2', storage: 'sq-fp16' },
    graph: 'base',
    classes: ['IndexIDMap', 'IndexHNSWCagra', 'IndexScalarQuantizer'],
  },
  {
    name: 'IHNs-fp16',
    dataType: 'half_float',
    dimension: 16,
    format: { index: 'IHNs', storage: 'sq-fp16' },
    graph: 'two-level',
    classes: ['IndexIDMap', 'IndexHNSWSQ', 'IndexScalarQuantizer'],
  },
  {
    name: 'IHNs-int8',
    dataType: 'byte',
    dimension: 16,
    format: { index: 'IHNs', storage: 'sq-int8' },
    graph: 'two-level',
    classes: ['IndexIDMap', 'IndexHNSWSQ', 'IndexScalarQuantizer'],
  },
  {
    name: 'IBHf',
    dataType: 'binary',
    dimension: 64,
    format: { index: 'IBHf', storage: 'binary-flat' },
    graph: 'two-level',
    classes: ['IndexBinaryIDMap', 'IndexBinaryHNSW', 'IndexBinaryFlat'],
  },
  {
    name: 'IBHc',
    dataType: 'binary',
    dimension: 64,
    format: { index: 'IBHc', storage: 'binary-flat' },
    graph: 'base',
    classes: ['IndexBinaryIDMap', 'IndexBinaryHNSWCagra', 'IndexBinaryFlat'],
    searchEntry: {
      node: 0,
      why: "Faiss 1.15's binary base-level search returns empty rows even on graphs it built",
    },
  },
  {
    name: 'IHNf-null',
    dataType: 'float',
    dimension: 16,
    format: { index: 'IHNf', storage: 'none' },
    graph: 'two-level',
    classes: ['IndexIDMap', 'IndexHNSWFlat', null],
  },
  {
    name: 'IHNc-null',
    dataType: 'float',
    dimension: 16,
    format: { index: 'IHNc', storage: 'none' },
    graph: 'base',
    classes: ['IndexIDMap', 'IndexHNSWCagra', null],
    rewriteDiffers: 'written back as IHc2',
  },
  {
    name: 'IHNs-null',
    dataType: 'byte',
    dimension: 16,
    format: { index: 'IHNs', storage: 'none' },
    graph: 'two-level',
    classes: ['IndexIDMap', 'IndexHNSWSQ', null],
  },
];

const QTYPE: Record<string, number> = { 'sq-fp16': 4, 'sq-int8': 8 };

function graphFor(v: Variant, data: TestData): HnswGraph {
  if (v.graph === 'two-level') return twoLevelGraph(data, M);
  const base = baseLevelGraph(data, M);
  return v.graph === 'base' ? base : { ...base, entryPoint: 42, maxLevel: 0 };
}

interface Info {
  classes: (string | null)[];
  d: number;
  ntotal: number;
  metric_type: number;
  ids: number[];
  hnsw: {
    entry_point: number;
    max_level: number;
    efSearch: number;
    efConstruction: number;
    levels: number[];
    base_level_only?: number;
    num_base_level_search_entrypoints?: number;
    numeric_type?: number;
  };
  storage?: { d: number; ntotal: number; code_size: number; qtype?: number };
}
type Result<T> = { ok: true; result: T } | { ok: false; error: string };

function unwrap<T>(r: Result<T> | undefined, what: string): T {
  if (!r) throw new Error(`no result for ${what}`);
  if (!r.ok) throw new Error(`${what}: ${r.error}`);
  return r.result;
}

describe.skipIf(!faissPythonAvailable())(
  `Faiss 1.15 reads what we write${unlessPython(faissPythonAvailable(), FAISS_115_PYTHON)}`,
  () => {
    const tmp = tempDir('faiss-compat-');
    const files = new Map<string, { file: string; data: TestData; graph: HnswGraph }>();
    let results: Result<unknown>[] = [];
    const tasks: Record<string, unknown>[] = [];

    beforeAll(async () => {
      for (const v of VARIANTS) {
        const data = testData(v.dataType, N, v.dimension, 11, v.space);
        const graph = graphFor(v, data);
        const file = path.join(tmp.dir, `${v.name}.faiss`);
        const written = await writeIndexFile(indexInput(data, graph, v.format), file);
        expect(written).toBe(faissIndexSize(indexInput(data, graph, v.format)));
        files.set(v.name, { file, data, graph });
        const queries = path.join(tmp.dir, `${v.name}.queries`);
        writeFileSync(queries, plantedQueries(data, PICKS));
        tasks.push({ cmd: 'info', file, ids: true, variant: v.name });
        if (v.format.storage !== 'none')
          tasks.push({
            cmd: 'search',
            file,
            queries,
            k: 5,
            ef: 64,
            entry: v.searchEntry?.node,
            variant: v.name,
          });
        tasks.push({ cmd: 'rewrite', file, out: `${file}.rewritten`, variant: v.name });
      }
      // Our own IHc2 for the IHNc inputs, to compare with Faiss's rewrite of the IHNc files.
      for (const name of ['IHNc', 'IHNc-null']) {
        const { data, graph } = files.get(name)!;
        const storage = name === 'IHNc' ? 'flat' : 'none';
        await writeIndexFile(
          indexInput(data, graph, { index: 'IHc2', storage }),
          path.join(tmp.dir, `${name}.as-IHc2`),
        );
      }
      // An IBHf with null storage, to document that Faiss cannot load it (see policy.ts).
      const bin = files.get('IBHf')!;
      const binaryNull = path.join(tmp.dir, 'IBHf-null.faiss');
      await writeIndexFile(indexInput(bin.data, bin.graph, { index: 'IBHf', storage: 'none' }), binaryNull);
      tasks.push({ cmd: 'info', file: binaryNull, variant: 'IBHf-null' });
      results = await runPythonJson<Result<unknown>[]>(
        FAISS_115_PYTHON,
        CHECK,
        ['batch'],
        JSON.stringify(tasks),
      );
    });

    afterAll(() => tmp.remove());

    const result = <T>(variant: string, cmd: string): T => {
      const i = tasks.findIndex((t) => t.variant === variant && t.cmd === cmd);
      return unwrap(results[i] as Result<T>, `${cmd} ${variant}`);
    };

    for (const v of VARIANTS) {
      describe(v.name, () => {
        it('loads with the expected types, d, ntotal, metric, ids and HNSW fields', () => {
          const { data, graph } = files.get(v.name)!;
          const info = result<Info>(v.name, 'info');
          expect(info.classes).toEqual(v.classes);
          expect(info.d).toBe(v.dimension);
          expect(info.ntotal).toBe(N);
          expect(info.metric_type).toBe(v.space === 'innerproduct' ? 0 : 1);
          expect(info.ids).toEqual(Array.from(data.ids));
          expect(info.hnsw.entry_point).toBe(graph.entryPoint);
          expect(info.hnsw.max_level).toBe(graph.maxLevel);
          expect(info.hnsw.efSearch).toBe(64);
          expect(info.hnsw.efConstruction).toBe(40);
          expect(info.hnsw.levels).toEqual(v.graph === 'two-level' ? [0, 270, 30] : [0, N]);
          if (v.format.index !== 'IHNf' && v.format.index !== 'IHNs' && v.format.index !== 'IBHf') {
            expect(info.hnsw.base_level_only).toBe(v.graph === 'two-level' ? 0 : 1);
            expect(info.hnsw.num_base_level_search_entrypoints).toBe(32);
          }
          if (v.format.index === 'IHc2')
            expect(info.hnsw.numeric_type).toBe(v.dataType === 'half_float' ? 1 : 0);
          if (v.format.storage === 'none') {
            expect(info.storage).toBeUndefined();
            return;
          }
          expect(info.storage).toMatchObject({ d: v.dimension, ntotal: N });
          if (QTYPE[v.format.storage]) expect(info.storage?.qtype).toBe(QTYPE[v.format.storage]);
        });

        if (v.format.storage !== 'none') {
          const how = v.searchEntry
            ? ` (searched from node ${v.searchEntry.node}: ${v.searchEntry.why})`
            : '';
          it(`finds the planted nearest neighbours through the id map${how}`, () => {
            const { data } = files.get(v.name)!;
            const { ids } = result<{ ids: number[][] }>(v.name, 'search');
            expect(ids.map((row) => row[0])).toEqual(PICKS.map((p) => data.ids[p]));
          });
        }

        it(
          v.rewriteDiffers
            ? `is rewritten by Faiss as expected (${v.rewriteDiffers})`
            : 'is written back by Faiss byte for byte',
          () => {
            const { file } = files.get(v.name)!;
            const rewrite = result<{ identical: boolean; bytes: number }>(v.name, 'rewrite');
            if (!v.rewriteDiffers) {
              expect(rewrite.identical).toBe(true);
              return;
            }
            expect(rewrite.identical).toBe(false);
            const ours = readFileSync(path.join(tmp.dir, `${v.name}.as-IHc2`));
            expect(readFileSync(`${file}.rewritten`).equals(ours)).toBe(true);
          },
        );
      });
    }

    it('cannot load a binary index with null storage (why binary keeps IBxF under skip_stored_vectors)', () => {
      const i = tasks.findIndex((t) => t.variant === 'IBHf-null');
      const r = results[i] as Result<unknown>;
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.error).toMatch(/not recognized/);
    });
  },
);

describe.skipIf(!faissPythonAvailable(FAISS_173_PYTHON))(
  `Debian's Faiss 1.7.3 reads IHNf (old clusters)${unlessPython(faissPythonAvailable(FAISS_173_PYTHON), FAISS_173_PYTHON)}`,
  () => {
    const tmp = tempDir('faiss-173-');
    afterAll(() => tmp.remove());

    it('loads, searches and rewrites IHNf (L2 and inner product) and fp16 IHNs byte for byte', async () => {
      const cases: { name: string; data: TestData; format: FaissFormat; classes: string[] }[] = [
        {
          name: 'IHNf-l2',
          data: testData('float', N, 16, 5),
          format: { index: 'IHNf', storage: 'flat' },
          classes: ['IndexIDMap', 'IndexHNSWFlat', 'IndexFlat'],
        },
        {
          name: 'IHNf-ip',
          data: testData('float', N, 16, 5, 'innerproduct'),
          format: { index: 'IHNf', storage: 'flat' },
          classes: ['IndexIDMap', 'IndexHNSWFlat', 'IndexFlat'],
        },
        {
          name: 'IHNs-fp16',
          data: testData('half_float', N, 16, 5),
          format: { index: 'IHNs', storage: 'sq-fp16' },
          classes: ['IndexIDMap', 'IndexHNSWSQ', 'IndexScalarQuantizer'],
        },
      ];
      const tasks: Record<string, unknown>[] = [];
      for (const c of cases) {
        const file = path.join(tmp.dir, `${c.name}.faiss`);
        await writeIndexFile(indexInput(c.data, twoLevelGraph(c.data, M), c.format), file);
        const queries = `${file}.queries`;
        writeFileSync(queries, plantedQueries(c.data, PICKS));
        tasks.push(
          { cmd: 'info', file, ids: true },
          { cmd: 'search', file, queries, k: 5, ef: 64 },
          { cmd: 'rewrite', file, out: `${file}.rewritten` },
        );
      }
      const out = await runPythonJson<Result<unknown>[]>(
        FAISS_173_PYTHON,
        CHECK,
        ['batch'],
        JSON.stringify(tasks),
      );
      cases.forEach((c, i) => {
        const info = unwrap(out[3 * i] as Result<Info>, `1.7.3 info ${c.name}`);
        expect(info.classes).toEqual(c.classes);
        expect(info.metric_type).toBe(c.data.spaceType === 'innerproduct' ? 0 : 1);
        expect(info.ids).toEqual(Array.from(c.data.ids));
        const search = unwrap(out[3 * i + 1] as Result<{ ids: number[][] }>, `1.7.3 search ${c.name}`);
        expect(search.ids.map((row) => row[0])).toEqual(PICKS.map((p) => c.data.ids[p]));
        expect(
          unwrap(out[3 * i + 2] as Result<{ identical: boolean }>, `1.7.3 rewrite ${c.name}`).identical,
        ).toBe(true);
      });
    });
  },
);
