// How a child process runs our TypeScript sources (development and tests; compiled builds need none of this):
// `--import <tsx's loader>` by absolute URL, so it resolves whatever the child's working directory is.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** execArgv that makes a child Node process load .ts files through tsx. */
export function tsxExecArgv(): string[] {
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  return ['--import', pathToFileURL(path.join(path.dirname(pkg), 'dist/loader.mjs')).href];
}
