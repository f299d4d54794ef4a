// Layers point one way: the core (jobs/, pipeline/, builders/, vectors/, faiss-format/, storage/) never imports the
// HTTP API (api/). The API maps the wire request onto the core's JobSpec (src/build-spec.ts) and renders the
// response bodies from the jobs' state; a core module that needs a wire type has the dependency backwards.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../src');
const CORE = ['jobs', 'pipeline', 'builders', 'vectors', 'faiss-format', 'storage'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative module a file imports or re-exports (static and dynamic), resolved to a path under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [
    ...text.matchAll(/\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g),
    ...text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
  ].map((m) => m[1]!);
  return specifiers
    .filter((s) => s.startsWith('.'))
    .map((s) => path.relative(SRC, path.resolve(path.dirname(file), s)));
}

describe('import graph', () => {
  it('finds imports in every form it checks (the scanner itself)', () => {
    const build = importsOf(path.join(SRC, 'api/build.ts'));
    expect(build).toContain('build-spec.js');
    expect(build).toContain('jobs/backend.js');
    expect(build).toContain('api/schemas.js'); // a multi-line import
  });

  it.each(CORE)('nothing under src/%s/ imports src/api/', (folder) => {
    const files = tsFiles(path.join(SRC, folder));
    expect(files.length).toBeGreaterThan(0);
    const offending = files.flatMap((f) =>
      importsOf(f)
        .filter((target) => target === 'api' || target.startsWith('api/'))
        .map((target) => `${path.relative(SRC, f)} -> ${target}`),
    );
    expect(offending).toEqual([]);
  });
});
