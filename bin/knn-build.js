#!/usr/bin/env node
// Runs the compiled CLI (dist/, made by scripts/setup.sh) or, in a source checkout without it, the TypeScript
// through tsx.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const compiled = path.join(root, 'dist/src/cli/main.js');
if (existsSync(compiled)) {
  await import(pathToFileURL(compiled).href);
} else {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      pathToFileURL(path.join(root, 'node_modules/tsx/dist/loader.mjs')).href,
      path.join(root, 'src/cli/main.ts'),
      ...process.argv.slice(2),
    ],
    {
      stdio: 'inherit',
      cwd: process.cwd(),
    },
  );
  process.exitCode = r.status ?? 1;
}
