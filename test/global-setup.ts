// Vitest global set-up: starts what the whole suite shares, once per run.
// The S3 test server (Ceph RGW on 127.0.0.1, ~15 s cold start) is provided to tests as `s3TestServer`.
//   S3_TEST_ENDPOINT=http://127.0.0.1:PORT or S3_TEST_DIR=<folder>: use a server already running (development:
//     `eval "$(scripts/s3-test-server.sh start)"` once, then `S3_TEST_DIR=$S3_TEST_DIR npx vitest ...`).
//   S3_TEST_SERVER=none: start none; tests that need S3 are skipped and say so.
import { spawnSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import {
  S3_SERVER_SCRIPT,
  runningS3TestServer,
  startS3TestServer,
  stopS3TestServer,
} from './helpers/s3-server.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const running = runningS3TestServer();
  if (running || process.env.S3_TEST_SERVER === 'none') {
    project.provide('s3TestServer', running ?? null);
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
