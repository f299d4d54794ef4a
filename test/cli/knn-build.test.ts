// The command-line tool: build an index from local files without the server, inspect it, clear usage errors.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { readFaissIndexFile } from '../../src/faiss-format/reader.js';
import { FAISS_115_PYTHON, REPO_ROOT, faissPythonAvailable, runPythonJson } from '../helpers/python.js';
import { clusteredFloat } from '../helpers/synthetic.js';
import { tsxExecArgv } from '../../src/tsx-loader.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'knn-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  return cliWithEnv({}, ...args);
}

function cliWithEnv(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(
    process.execPath,
    [...tsxExecArgv(), path.join(REPO_ROOT, 'src/cli/main.ts'), ...args],
    {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('knn-build', () => {
  const n = 1500;
  const d = 24;
  writeFileSync(path.join(dir, 'seg.knnvec'), clusteredFloat({ count: n, dimension: d, seed: 3 }));
  writeFileSync(
    path.join(dir, 'seg.knndid'),
    Int32Array.from({ length: n }, (_, i) => 10 + 2 * i),
  );

  it('builds from local files (count taken from the doc ids) and writes a file Faiss reads', async () => {
    const r = cli(
      'build',
      '--vectors',
      'seg.knnvec',
      '--doc-ids',
      'seg.knndid',
      '--dimension',
      String(d),
      '--builder',
      'cpu',
      '--out',
      'out/seg.faiss',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/downloading[\s\S]*building[\s\S]*uploading[\s\S]*wrote out\/seg\.faiss/);
    const summary = readFaissIndexFile(path.join(dir, 'out/seg.faiss'));
    expect(summary.ntotal).toBe(n);
    if (faissPythonAvailable()) {
      const [info] = await runPythonJson<[{ ok: boolean; result: { ntotal: number; ids: number[] } }]>(
        FAISS_115_PYTHON,
        'test/python/faiss_check.py',
        ['batch'],
        JSON.stringify([{ cmd: 'info', file: path.join(dir, 'out/seg.faiss'), ids: true }]),
      );
      expect(info.result.ids.slice(0, 3)).toEqual([10, 12, 14]);
    }
  });

  it('inspects a file, as text and as JSON', () => {
    const text = cli('inspect', 'out/seg.faiss');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/IxMp > IHNf > IxF2/);
    const json = cli('inspect', 'out/seg.faiss', '--json');
    expect(JSON.parse(json.stdout).ntotal).toBe(n);
  });

  it('answers bad usage with exit code 2 and a message naming the option', () => {
    expect(cli('build', '--vectors', 'seg.knnvec').stderr).toMatch(/--doc-ids is required/);
    const bad = cli(
      'build',
      '--vectors',
      'seg.knnvec',
      '--doc-ids',
      'seg.knndid',
      '--dimension',
      '0',
      '--out',
      'x.faiss',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--dimension must be an integer from 1/);
    expect(cli('frobnicate').code).toBe(2);
  });

  it('reads S3 settings as the service does: every bad S3_* variable named before any request', () => {
    const r = cliWithEnv(
      { S3_ENDPOINT_URL: 'http://127.0.0.1:9', S3_CHECKSUMS: 'sha1', S3_CONCURRENCY: '300' },
      'build',
      '--vectors',
      's3://bucket/seg.knnvec',
      '--doc-ids',
      's3://bucket/seg.knndid',
      '--dimension',
      String(d),
      '--out',
      'x.faiss',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/S3_CHECKSUMS must be one of auto, crc32, md5/);
    expect(r.stderr).toMatch(/S3_CONCURRENCY must be an integer from 1 to 256/);
  });

  it('fails with exit code 1 and the pipeline message when the data does not match', () => {
    const r = cli(
      'build',
      '--vectors',
      'seg.knnvec',
      '--doc-ids',
      'seg.knndid',
      '--dimension',
      String(d + 1),
      '--builder',
      'cpu',
      '--out',
      'bad.faiss',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bytes/);
  });
});
