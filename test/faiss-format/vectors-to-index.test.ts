// Vectors in, Faiss files out: `.knnvec` / `.knndid` blobs as the storage layer hands them over (half_float
// converted while "downloading"), parsed, written in the layout a policy chooses, then searched by Faiss 1.15
// against exact ground truth from the original blobs (faiss_check.py recall, which also checks the id map).
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { FormatPolicyName, GraphSource } from '../../src/faiss-format/policy.js';
import { chooseFormat, formatPolicy } from '../../src/faiss-format/policy.js';
import type { HostBlob } from '../../src/storage/types.js';
import { float16BitsToFloat32 } from '../../src/vectors/fp16.js';
import { parseDocIdBlob } from '../../src/vectors/knndid.js';
import { knnvecReadOptions, parseVectorBlob } from '../../src/vectors/knnvec.js';
import type { DataType } from '../../src/vectors/types.js';
import type { TestData } from '../helpers/faiss-files.js';
import {
  baseLevelGraph,
  indexInput,
  random,
  tempDir,
  twoLevelGraph,
  unlessPython,
  writeIndexFile,
} from '../helpers/faiss-files.js';
import { FAISS_115_PYTHON, REPO_ROOT, faissPythonAvailable, runPythonJson } from '../helpers/python.js';

const N = 400;
const M = 8;
const DIMENSION: Record<DataType, number> = { float: 24, half_float: 24, byte: 24, binary: 128 };

/** The `.knnvec` bytes k-NN uploads (half_float as float32). */
function wireVectors(dataType: DataType, seed: number): Uint8Array {
  const rnd = random(seed);
  const d = DIMENSION[dataType];
  if (dataType === 'binary' || dataType === 'byte') {
    return Uint8Array.from({ length: (N * d) / (dataType === 'binary' ? 8 : 1) }, () =>
      Math.floor(rnd() * 256),
    );
  }
  return new Uint8Array(Float32Array.from({ length: N * d }, () => rnd() * 2 - 1).buffer);
}

/** What the storage layer returns: chunks of `alignBytes` multiples, with the transform applied per chunk. */
function download(wire: Uint8Array, dataType: DataType): HostBlob {
  const { alignBytes, transform } = knnvecReadOptions({ dataType, dimension: DIMENSION[dataType], count: N });
  const records = [7, 100, 1, N]; // uneven chunks of whole vectors
  const inRecord = transform ? (alignBytes! / transform.outputUnit) * transform.inputUnit : alignBytes!;
  const chunks: Uint8Array[] = [];
  for (let at = 0, i = 0; at < wire.length; i++) {
    const input = wire.subarray(at, Math.min(wire.length, at + records[i % records.length]! * inRecord));
    at += input.length;
    if (!transform) {
      chunks.push(input.slice());
      continue;
    }
    const output = new Uint8Array((input.length / transform.inputUnit) * transform.outputUnit);
    transform.apply(input, output);
    chunks.push(output);
  }
  return { byteLength: chunks.reduce((sum, c) => sum + c.length, 0), chunks };
}

const CASES: { policy: FormatPolicyName; builder: GraphSource }[] = [
  { policy: 'compatible', builder: 'cpu' },
  { policy: 'compatible', builder: 'gpu' },
  { policy: 'reference', builder: 'gpu' },
];

type Recall = { recall: number; top1_match: number; unknown_ids: number; queries: number };
type Result = { ok: true; result: Recall } | { ok: false; error: string };

describe.skipIf(!faissPythonAvailable())(
  `vectors in, Faiss files out${unlessPython(faissPythonAvailable(), FAISS_115_PYTHON)}`,
  () => {
    const tmp = tempDir('vec2index-');
    const tasks: Record<string, unknown>[] = [];
    const names: string[] = [];
    let results: Result[] = [];

    beforeAll(async () => {
      for (const dataType of ['float', 'half_float', 'byte', 'binary'] as const) {
        const d = DIMENSION[dataType];
        const wire = wireVectors(dataType, 21);
        const docIds = Int32Array.from({ length: N }, (_, i) => 5 * i + 2);
        const vecFile = path.join(tmp.dir, `${dataType}.knnvec`);
        const didFile = path.join(tmp.dir, `${dataType}.knndid`);
        writeFileSync(vecFile, wire);
        writeFileSync(didFile, new Uint8Array(docIds.buffer));

        const vectors = parseVectorBlob(download(wire, dataType), { dataType, dimension: d, count: N });
        const ids = parseDocIdBlob({ byteLength: N * 4, chunks: [new Uint8Array(docIds.buffer)] }, N);
        const spaceType = dataType === 'binary' ? 'hamming' : 'l2';
        const floats = dataType === 'binary' ? new Float32Array(0) : toFloats(vectors.chunks, dataType);
        const data: TestData = { vectors, floats, ids, spaceType };
        for (const { policy, builder } of CASES) {
          const format = chooseFormat({ dataType, builder }, formatPolicy(policy));
          const graph = format.needsHierarchicalGraph ? twoLevelGraph(data, M) : baseLevelGraph(data, M);
          const name = `${dataType} ${policy}/${builder} -> ${format.index}`;
          const file = path.join(tmp.dir, `${dataType}-${policy}-${builder}.faiss`);
          await writeIndexFile(indexInput(data, graph, format), file);
          names.push(name);
          // Faiss 1.15's binary base-level search is unreliable (see faiss-compat.test.ts): search from node 0.
          const entry = format.index === 'IBHc' ? 0 : undefined;
          tasks.push({
            cmd: 'recall',
            file,
            vectors: vecFile,
            doc_ids: didFile,
            data_type: dataType,
            dimension: d,
            k: 10,
            ef: 64,
            num_queries: 50,
            entry,
          });
        }
      }
      results = await runPythonJson<Result[]>(
        FAISS_115_PYTHON,
        path.join(REPO_ROOT, 'test/python/faiss_check.py'),
        ['batch'],
        JSON.stringify(tasks),
      );
    });

    afterAll(() => tmp.remove());

    it('every data type and policy: Faiss finds the exact neighbours through the id map', () => {
      const report = names.map((name, i) => {
        const r = results[i]!;
        return r.ok ? { name, ...r.result } : { name, error: r.error };
      });
      for (const row of report) {
        expect(row, row.name).not.toHaveProperty('error');
        const r = row as Recall & { name: string };
        expect(r.unknown_ids, `${r.name}: ids outside the .knndid`).toBe(0);
        expect(r.top1_match, `${r.name}: top-1 is the query's own vector`).toBe(1);
        expect(r.recall, `${r.name}: recall@10`).toBeGreaterThanOrEqual(0.9);
      }
    });
  },
);

/** float32 values of parsed vectors (fp16 decoded), for the test graph's distances. */
function toFloats(chunks: readonly ArrayLike<number>[], dataType: DataType): Float32Array {
  const values = chunks.flatMap((c) => Array.from(c));
  return Float32Array.from(values, dataType === 'half_float' ? float16BitsToFloat32 : Number);
}
