// What the container test (scripts/container-test.sh, in CI) cannot prove about the Dockerfiles; the rest it proves
// by building the image and running it: the service starts from the image's ENTRYPOINT (tini as PID 1) and CMD,
// answers, passes the image's HEALTHCHECK, runs as an unprivileged user and drains to exit 0 on SIGTERM. Left here:
// * the image's setting defaults equal the service's own (src/config.ts), apart from the two it changes on purpose:
//   the container test sets the variables it needs, so a drifted default would run unnoticed;
// * EXPOSE agrees with PORT: the container test uses host networking, where EXPOSE plays no part;
// * the production build arguments (the CUDA images, the GPU builder): CI builds from a local Debian base with the
//   CPU builder, so those defaults are never built there.
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

  it('exposes the port the service listens on by default', () => {
    expect(instructions(api)).toContain(`EXPOSE ${env.PORT}`);
  });
});

describe('production build arguments (CI builds neither)', () => {
  it('defaults to the CUDA development image on Ubuntu 24.04 and builds the addon with KNN_GPU', () => {
    expect(base).toMatch(/^ARG BASE_IMAGE=nvidia\/cuda:13\.[\d.]+-devel-ubuntu24\.04$/m);
    expect(base).toMatch(/--CDKNN_GPU="\$\{KNN_GPU\}"/);
    expect(api).toMatch(/^ARG RUNTIME_IMAGE=nvidia\/cuda:13\.[\d.]+-runtime-ubuntu24\.04$/m);
  });
});
