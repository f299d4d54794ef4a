// The inspect command prints a file's structure from our reader, and fails with the reader's message.
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { inspectFaissFile } from '../../src/cli/inspect.js';
import { faissIndexChunks } from '../../src/faiss-format/writer.js';
import { baseLevelGraph, indexInput, tempDir, testData, twoLevelGraph } from '../helpers/faiss-files.js';

const tmp = tempDir('inspect-');
afterAll(() => tmp.remove());

function writeFile(name: string, chunks: Iterable<Uint8Array>): string {
  const file = path.join(tmp.dir, name);
  writeFileSync(file, Buffer.concat(Array.from(chunks, (c) => Buffer.from(c))));
  return file;
}

function capture(): { write: (t: string) => void; text: () => string } {
  let text = '';
  return { write: (t) => void (text += t), text: () => text };
}

describe('inspectFaissFile', () => {
  it('prints the layout, key fields and sections of an IHNf file', async () => {
    const data = testData('float', 100, 8);
    const file = writeFile(
      'a.faiss',
      faissIndexChunks(indexInput(data, twoLevelGraph(data, 4), { index: 'IHNf', storage: 'flat' })),
    );
    const out = capture();
    const summary = await inspectFaissFile(file, out);
    const text = out.text();
    expect(text).toContain(`${file}: ${summary.fileBytes} bytes, Faiss IxMp > IHNf > IxF2`);
    expect(text).toContain('vectors   100 × 8, metric L2');
    expect(text).toContain(`ids       100 doc ids, ${data.ids[0]} .. ${data.ids[99]}, strictly increasing`);
    expect(text).toContain('entry     node 0, max_level 1');
    expect(text).toContain('levels    level 0: 90 nodes, level 1: 10 nodes');
    expect(text).toContain('storage   IxF2 flat float32, 32 bytes per vector, 3200 bytes');
    expect(text).toMatch(/^\s+0\s+37\s+IxMp$/m);
    expect(text).toMatch(/hnsw\.neighbors$/m);
  });

  it('shows the CAGRA fields and fp16 storage of an IHc2 file, and JSON on request', async () => {
    const data = testData('half_float', 64, 8);
    const file = writeFile(
      'b.faiss',
      faissIndexChunks(indexInput(data, baseLevelGraph(data, 4), { index: 'IHc2', storage: 'sq-fp16' })),
    );
    const out = capture();
    await inspectFaissFile(file, out);
    expect(out.text()).toContain(
      'cagra     base_level_only yes, keep_max_size_level0 yes, 32 random entry points, numeric_type float16',
    );
    expect(out.text()).toContain('entry     none (base level only)');
    expect(out.text()).toContain('storage   IxSQ scalar quantizer fp16, 16 bytes per vector');
    const json = capture();
    await inspectFaissFile(file, json, { json: true });
    expect(JSON.parse(json.text())).toMatchObject({ index: 'IHc2', storage: 'IxSQ', ntotal: 64 });
  });

  it("fails with the reader's message on a damaged file", async () => {
    const data = testData('float', 20, 8);
    const bytes = Array.from(
      faissIndexChunks(indexInput(data, twoLevelGraph(data, 4), { index: 'IHNf', storage: 'flat' })),
    );
    const file = writeFile('c.faiss', [Buffer.concat(bytes.map((b) => Buffer.from(b))).subarray(0, 300)]);
    await expect(inspectFaissFile(file, capture())).rejects.toThrow(/file truncated/);
  });
});
