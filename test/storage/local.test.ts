// The local store's own hazards: symbolic links that lead out of a container, FIFOs and other special files,
// temporary files left by killed writers, 255-byte names, and error messages that must not show server paths.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { LocalObjectStore, STALE_TEMP_MS, isTempFileName } from '../../src/storage/local.js';
import { resolveStorageSettings } from '../../src/storage/settings.js';
import { failure } from './fixtures.js';

/** Fails instead of hanging when `p` does not settle within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms)),
  ]);
}

describe('local store hazards', () => {
  let base: string;
  let root: string;
  let outside: string;
  let store: LocalObjectStore;
  const c = (key: string) => ({ container: 'c', key });

  beforeEach(() => {
    base = mkdtempSync(path.join(os.tmpdir(), 'knn-local-'));
    root = path.join(base, 'root');
    outside = path.join(base, 'outside');
    mkdirSync(path.join(root, 'c', 'seg'), { recursive: true });
    mkdirSync(path.join(root, 'other'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'secret.knnvec'), 'secret');
    writeFileSync(path.join(root, 'other', 'theirs.knnvec'), 'theirs');
    store = new LocalObjectStore(resolveStorageSettings({ kind: 'local', localRoot: root }));
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('refuses to read through a symbolic link that leaves the container (out of the root, or to another one)', async () => {
    symlinkSync(path.join(outside, 'secret.knnvec'), path.join(root, 'c', 'seg', 'link.knnvec'));
    symlinkSync(path.join(root, 'other', 'theirs.knnvec'), path.join(root, 'c', 'seg', 'cross.knnvec'));
    symlinkSync(outside, path.join(root, 'c', 'out'));
    for (const key of ['seg/link.knnvec', 'seg/cross.knnvec', 'out/secret.knnvec']) {
      // One call at a time: a second promise made up front would reject before anything awaits it.
      for (const attempt of [() => store.head(c(key)), () => store.read(c(key))]) {
        const e = await failure(attempt());
        expect(e.code).toBe('InvalidLocation');
        expect(e.message).toMatch(/symbolic link on its path leads out of its container/);
      }
    }
  });

  it('follows a symbolic link that stays inside the container', async () => {
    writeFileSync(path.join(root, 'c', 'seg', 'real.knnvec'), 'inside');
    symlinkSync('real.knnvec', path.join(root, 'c', 'seg', 'alias.knnvec'));
    // The version is the target's, as a read gives it (a copy started from HEAD copies the bytes read).
    const { version } = await store.read(c('seg/alias.knnvec'));
    expect(await store.head(c('seg/alias.knnvec'))).toEqual({ size: 6, version });
  });

  it('refuses to write through a symbolic link to a folder outside, creating nothing there', async () => {
    symlinkSync(outside, path.join(root, 'c', 'out'));
    for (const key of ['out/x.faiss', 'out/new/deeper/x.faiss']) {
      const e = await failure(store.write(c(key), Readable.from([Buffer.from('x')])));
      expect(e.code).toBe('InvalidLocation');
    }
    expect(readdirSync(outside).sort()).toEqual(['secret.knnvec']);
  });

  it('replaces a symbolic link at the key itself instead of writing through it', async () => {
    symlinkSync(path.join(outside, 'secret.knnvec'), path.join(root, 'c', 'seg', 'x.faiss'));
    await store.write(c('seg/x.faiss'), Readable.from([Buffer.from('index')]));
    expect(execFileSync('cat', [path.join(outside, 'secret.knnvec')]).toString()).toBe('secret');
    expect(execFileSync('cat', [path.join(root, 'c', 'seg', 'x.faiss')]).toString()).toBe('index');
  });

  it('refuses a FIFO at once instead of waiting for a writer forever', async () => {
    execFileSync('mkfifo', [path.join(root, 'c', 'seg', 'a.knndid')]);
    // Each started only when awaited: a read started beside the head would reject with no handler yet.
    for (const attempt of [() => store.head(c('seg/a.knndid')), () => store.read(c('seg/a.knndid'))]) {
      const e = await within(failure(attempt()), 3000);
      expect(e.code).toBe('InvalidLocation');
      expect(e.message).toBe(
        'local://c/seg/a.knndid is not a regular file (it is a FIFO); objects must be regular files',
      );
    }
  });

  it('writes a 255-byte object name (its temporary file name is short)', async () => {
    const name = `${'n'.repeat(249)}.faiss`;
    expect(Buffer.byteLength(name)).toBe(255);
    await store.write(c(`seg/${name}`), Readable.from([Buffer.from('index')]));
    expect(readdirSync(path.join(root, 'c', 'seg'))).toEqual([name]);
  });

  it('removes what a killed writer of the same object left when the object is written again', async () => {
    // A writer that stops mid-file stands for one that was killed: its temporary file stays behind.
    const stuck = new PassThrough();
    const abandoned = store.write(c('seg/x.faiss'), stuck).catch(() => undefined);
    stuck.write(Buffer.alloc(1000));
    const folder = path.join(root, 'c', 'seg');
    for (let i = 0; i < 500 && !readdirSync(folder).some(isTempFileName); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(readdirSync(folder).filter(isTempFileName)).toHaveLength(1);

    await store.write(c('seg/x.faiss'), Readable.from([Buffer.from('index')]));
    expect(readdirSync(folder)).toEqual(['x.faiss']);
    stuck.destroy(new Error('test over'));
    await abandoned;
  });

  it('removes stale temporary files at start-up (removeStaleTemps), keeping fresh ones', async () => {
    const seg = path.join(root, 'c', 'seg');
    const stale = [
      path.join(seg, '.knn-tmp-0123456789abcdef-01234567'),
      path.join(seg, 'old.faiss.tmp-0123456789ab'),
    ];
    const fresh = path.join(seg, '.knn-tmp-fedcba9876543210-76543210');
    for (const f of [...stale, fresh]) writeFileSync(f, 'partial');
    const old = (Date.now() - STALE_TEMP_MS - 60_000) / 1000;
    for (const f of stale) utimesSync(f, old, old);
    expect(await store.removeStaleTemps()).toBe(2);
    expect(stale.some((f) => existsSync(f))).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });

  it('names container and key in errors, never server paths, and says a file-system error once', async () => {
    const missing = await failure(store.read(c('seg/none.knnvec')));
    expect(missing.message).toBe('reading local://c/seg/none.knnvec failed: no such object (NoSuchKey)');
    const bucket = await failure(store.read({ container: 'nope', key: 'a.knnvec' }));
    expect(bucket.message).toBe(
      "reading local://nope/a.knnvec failed: container 'nope' does not exist in the local store (NoSuchBucket)",
    );
    if (process.getuid?.() !== 0) {
      await chmod(path.join(root, 'c', 'seg'), 0o500);
      try {
        const denied = await failure(store.write(c('seg/y.faiss'), Readable.from([Buffer.from('x')])));
        expect(denied.message).toBe('writing local://c/seg/y.faiss failed: permission denied (EACCES)');
      } finally {
        await chmod(path.join(root, 'c', 'seg'), 0o700);
      }
    }
    const long = `seg/${'n'.repeat(300)}.faiss`;
    const tooLong = await failure(store.write(c(long), Readable.from([Buffer.from('x')])));
    expect(tooLong.message).toBe(`writing local://c/${long} failed: name too long (ENAMETOOLONG)`);
    for (const e of [missing, bucket, tooLong]) expect(e.message).not.toContain(base);
  });
});
