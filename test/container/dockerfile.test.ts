// Static checks of the images' Dockerfiles (no podman needed): the runtime image's setting defaults stay equal to
// the service's own (src/config.ts), apart from the two the container changes on purpose, and the runtime
// contract (non-root, port, health check, entry point) stays in place.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { type Settings, loadSettings } from '../../src/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const api = readFileSync(path.join(ROOT, 'Dockerfile.api'), 'utf8');
const base = readFileSync(path.join(ROOT, 'Dockerfile.base'), 'utf8');

/** Instructions of a Dockerfile, continuation lines joined, comments dropped. */
function instructions(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

/** The KEY=value pairs of every ENV instruction of the final stage (values without quotes or spaces). */
function envOf(text: string): Record<string, string> {
  const all = instructions(text);
  const lastFrom = all.findLastIndex((i) => /^FROM\s/i.test(i));
  const env: Record<string, string> = {};
  for (const i of all.slice(lastFrom)) {
    if (!/^ENV\s/i.test(i)) continue;
    for (const [, k, v] of i.slice(4).matchAll(/([A-Z0-9_]+)=(\S*)/g)) env[k!] = v!;
  }
  return env;
}

/** Settings without the fields the container sets differently on purpose. */
function comparable(s: Settings): Record<string, unknown> {
  const { objectStore: _o, objectStoreReason: _r, localStoreRoot: _l, storage, ...rest } = s;
  const { kind: _k, localRoot: _lr, ...storageRest } = storage;
  return { ...rest, storage: storageRest };
}

describe('Dockerfile.api', () => {
  const env = envOf(api);

  it('gives every setting it names the service default, except OBJECT_STORE=s3 and LOCAL_STORE_ROOT=/data', () => {
    expect(env.OBJECT_STORE).toBe('s3');
    expect(env.LOCAL_STORE_ROOT).toBe('/data');
    expect(env.PORT).toBe('1025');
    const inImage = loadSettings(env);
    expect(inImage.objectStore).toBe('s3');
    expect(comparable(inImage)).toEqual(comparable(loadSettings({})));
  });

  it('runs node dist/src/main.js under tini as an unprivileged user, port 1025, health from /_heart_beat', () => {
    const all = instructions(api);
    const finalStage = all.slice(all.findLastIndex((i) => /^FROM\s/i.test(i)));
    expect(finalStage).toContain('CMD ["node", "dist/src/main.js"]');
    expect(finalStage).toContain('ENTRYPOINT ["/usr/bin/tini", "--"]');
    expect(finalStage).toContain('EXPOSE 1025');
    const user = finalStage.filter((i) => i.startsWith('USER ')).pop();
    expect(user).toBeDefined();
    expect(user).not.toMatch(/\broot\b|\s0$/);
    expect(finalStage.find((i) => i.startsWith('HEALTHCHECK '))).toMatch(/\/_heart_beat/);
  });
});

describe('Dockerfile.base', () => {
  it('defaults to the CUDA development image on Ubuntu 24.04 and builds the addon with KNN_GPU', () => {
    expect(base).toMatch(/^ARG BASE_IMAGE=nvidia\/cuda:13\.[\d.]+-devel-ubuntu24\.04$/m);
    expect(base).toMatch(/--CDKNN_GPU="\$\{KNN_GPU\}"/);
    expect(api).toMatch(/^ARG RUNTIME_IMAGE=nvidia\/cuda:13\.[\d.]+-runtime-ubuntu24\.04$/m);
  });
});
