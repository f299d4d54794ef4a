// The Node.js the project runs on: Node 24 everywhere (scripts/setup.sh pins it for development and CI, the
// image downloads the same version, engines, @types/node and the GPU bundle name the same major), the native
// addon's N-API version is one it supports, and the pinned AWS SDK does not warn about it.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const major = (version: string) => Number(version.replace(/^v/, '').split('.')[0]);

/** The first capture of `re` in `text`, or a failed expectation naming what was looked for. */
function capture(text: string, re: RegExp): string {
  const m = re.exec(text);
  expect(m, `${re} not found`).not.toBeNull();
  return m![1]!;
}

const setup = read('scripts/setup.sh');
const pinned = capture(setup, /^NODE_PIN_VERSION=(\d+\.\d+\.\d+)$/m);
const minMajor = Number(capture(setup, /^NODE_MIN_MAJOR=(\d+)$/m));
const pinnedNode = path.join(ROOT, '.node/bin/node');

describe('the Node.js runtime', () => {
  it('runs this suite on Node 24 or newer: the pinned copy in .node/ when scripts/setup.sh made one', () => {
    expect(minMajor).toBe(24);
    expect(major(process.version)).toBeGreaterThanOrEqual(minMajor);
    if (existsSync(pinnedNode)) {
      expect(realpathSync(process.execPath)).toBe(realpathSync(pinnedNode));
      expect(process.version).toBe(`v${pinned}`);
    }
  });

  it('is the same version in scripts/setup.sh, Dockerfile.base, engines, @types/node and the GPU bundle', () => {
    expect(major(pinned)).toBe(minMajor);
    expect(capture(read('Dockerfile.base'), /^ARG NODE_VERSION=(\S+)$/m)).toBe(pinned);
    const pkg = JSON.parse(read('package.json')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    expect(pkg.engines.node).toBe(`>=${minMajor}`);
    expect(major(pkg.devDependencies['@types/node']!.replace(/^\^/, ''))).toBe(minMajor);
    const targets = [...read('scripts/gpu-bundle.sh').matchAll(/--target=node(\d+)/g)].map((m) =>
      Number(m[1]),
    );
    expect(targets.length).toBeGreaterThan(0);
    expect(new Set(targets)).toEqual(new Set([minMajor]));
    expect(read('README.md').includes(`Node.js ${pinned}`), `README.md names Node.js ${pinned}`).toBe(true);
  });

  it('builds the native addon for an N-API version this Node supports', () => {
    const napi = Number(capture(read('src/native/CMakeLists.txt'), /NAPI_VERSION=(\d+)/));
    expect(napi).toBeLessThanOrEqual(Number(process.versions.napi));
    const cmakeCache = path.join(ROOT, 'build/native/CMakeCache.txt');
    if (existsSync(cmakeCache)) {
      // cmake-js records the Node it configured the addon with: the one running here.
      expect(capture(readFileSync(cmakeCache, 'utf8'), /^NODE_RUNTIMEVERSION:\w+=(\S+)$/m)).toBe(
        process.versions.node,
      );
    }
  });

  // Creating a client is what makes the SDK check the Node version (once per process, as a process warning).
  const sdkProbe = `
    process.on('warning', (w) => console.log('WARNING', w.name, w.message.split('\\n')[0]));
    const { S3Client } = await import('@aws-sdk/client-s3');
    new S3Client({ region: 'us-east-1' });
    await new Promise((r) => setTimeout(r, 50));
    console.log('done');`;
  const runProbe = (node: string) => {
    const env = { ...process.env };
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    const r = spawnSync(node, ['--input-type=module', '-e', sdkProbe], { cwd: ROOT, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
  };

  it('gets no NodeVersionSupportWarning from the pinned AWS SDK', () => {
    const out = runProbe(process.execPath);
    expect(out).toContain('done');
    expect(out).not.toMatch(/NodeVersionSupportWarning/);
  });

  // The control: the same probe does see the warning on an older Node (the machine's own, where it is older).
  const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find(
    (p) => existsSync(p) && major(spawnSync(p, ['--version'], { encoding: 'utf8' }).stdout) < 22,
  );
  it.skipIf(!systemNode || !existsSync(pinnedNode))(
    'bin/knn-build.js started by an older node runs itself on the pinned one (skipped without both)',
    () => {
      // Every node process started prints its version first: the old one, then the pinned one.
      const printVersion = 'data:text/javascript,console.error(`node:${process.version}`)';
      const r = spawnSync(systemNode!, [path.join(ROOT, 'bin/knn-build.js'), '--help'], {
        env: { ...process.env, NODE_OPTIONS: `--import ${printVersion}` },
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('knn-build <command>');
      const versions = [...r.stderr.matchAll(/^node:(v\S+)$/gm)].map((m) => m[1]);
      expect(versions).toEqual([
        spawnSync(systemNode!, ['--version'], { encoding: 'utf8' }).stdout.trim(),
        `v${pinned}`,
      ]);
    },
  );

  it.skipIf(!systemNode)(
    'control: the probe sees that warning on a Node older than 22 (the machine node)',
    () => {
      expect(runProbe(systemNode!)).toMatch(/NodeVersionSupportWarning/);
    },
  );
});
