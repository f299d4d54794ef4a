// Vitest global set-up: starts what the whole suite shares, once per run.
// The S3 test server (Ceph RGW on 127.0.0.1, ~15 s cold start) is provided to tests as `s3TestServer`. It is
// started only when a test file of this run uses it (imports test/helpers/s3.ts, directly or through its helpers),
// so a run of unit tests does not wait for it.
//   S3_TEST_ENDPOINT=http://127.0.0.1:PORT or S3_TEST_DIR=<folder>: use a server already running (development:
//     `eval "$(scripts/s3-test-server.sh start)"` once, then `S3_TEST_DIR=$S3_TEST_DIR npx vitest ...`).
//   S3_TEST_SERVER=none: start none; tests that need S3 are skipped and say so. S3_TEST_SERVER=always: start it
//     whatever the files.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import {
  S3_SERVER_SCRIPT,
  runningS3TestServer,
  startS3TestServer,
  stopS3TestServer,
} from './helpers/s3-server.js';

const S3_HELPER = path.resolve(import.meta.dirname, 'helpers/s3.ts');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const running = runningS3TestServer();
  if (running || process.env.S3_TEST_SERVER === 'none') {
    project.provide('s3TestServer', running ?? null);
    return async () => {};
  }
  if (process.env.S3_TEST_SERVER !== 'always' && !(await runUsesS3(project))) {
    project.provide('s3TestServer', { notStarted: 'no test file of this run imports test/helpers/s3.ts' });
    return async () => {};
  }
  const server = await startS3TestServer();
  const dir = server.dir!;
  // If vitest dies without running teardown, still stop the daemons (stop is idempotent).
  const onExit = () => void spawnSync('bash', [S3_SERVER_SCRIPT, 'stop', dir], { stdio: 'ignore' });
  process.once('exit', onExit);
  project.provide('s3TestServer', server);
  return async () => {
    process.off('exit', onExit);
    await stopS3TestServer(dir);
  };
}

/** Whether a test file selected for this run reaches test/helpers/s3.ts through its relative imports. */
async function runUsesS3(project: TestProject): Promise<boolean> {
  try {
    // The CLI's file filters (internal to vitest; without them, every test file counts).
    const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
    const specs = await project.vitest.globTestSpecifications(filters);
    const seen = new Set<string>();
    return specs.some((spec) => reaches(spec.moduleId, S3_HELPER, seen));
  } catch {
    return true; // when in doubt, start it
  }
}

function reaches(file: string, target: string, seen: Set<string>): boolean {
  if (file === target) return true;
  if (seen.has(file) || !existsSync(file)) return false;
  seen.add(file);
  const source = readFileSync(file, 'utf8');
  for (const [, spec] of source.matchAll(/from\s+'(\.{1,2}\/[^']+)'/g)) {
    const imported = path.resolve(path.dirname(file), spec!).replace(/\.js$/, '.ts');
    if (reaches(imported, target, seen)) return true;
  }
  return false;
}
