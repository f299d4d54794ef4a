#!/usr/bin/env node
// Runs the compiled CLI (dist/, made by scripts/setup.sh) or, in a source checkout without it, the TypeScript
// through tsx; on the project's Node 24: started by an older node, it runs itself again on the pinned Node that
// scripts/setup.sh put in .node/ (README, "Which Node runs").
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const compiled = path.join(root, 'dist/src/cli/main.js');
const pinnedNode = path.join(root, '.node/bin/node');
if (Number(process.versions.node.split('.')[0]) < 24) {
  if (!existsSync(pinnedNode)) {
    process.stderr.write(
      `knn-build: needs Node.js 24 or newer, this is ${process.version}: run scripts/setup.sh\n`,
    );
    process.exit(1);
  }
  const r = spawnSync(pinnedNode, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? 1);
} else if (existsSync(compiled)) {
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
