// Builds run in a worker process in the service (child_process.fork): check that the addon works there, reports
// progress, and that options the native side rejects come back as an Error while the process lives on.
import { fork } from 'node:child_process';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

const CHILD = path.join(import.meta.dirname, 'fixtures/build-child.ts');

interface ChildRun {
  messages: Record<string, unknown>[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runChild(scenario: string): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [scenario], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const messages: Record<string, unknown>[] = [];
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('message', (m) => messages.push(m as Record<string, unknown>));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ messages, code, signal, stderr }));
  });
}

describe('a CPU build in a child process', () => {
  it('builds and reports progress up to 1', async () => {
    const run = await runChild('valid');
    expect(run.stderr).toBe('');
    expect([run.code, run.signal]).toEqual([0, null]);
    expect(run.messages).toEqual([{ kind: 'built', levels: 2000, lastProgress: 1 }]);
  });

  it('turns options the native builder rejects into an Error, then builds again in the same process', async () => {
    const run = await runChild('invalid-then-valid');
    expect([run.code, run.signal]).toEqual([0, null]);
    expect(run.messages[0]).toEqual({
      kind: 'rejected',
      name: 'Error',
      message: 'CPU build failed: m must be in [2, 4096], got 1',
    });
    expect(run.messages[1]).toMatchObject({ kind: 'built', levels: 2000 });
  });

  it('ends only the child when it is killed mid-build (as by the OOM killer)', async () => {
    const run = await runChild('killed-mid-build');
    expect([run.code, run.signal]).toEqual([null, 'SIGKILL']);
    expect(run.messages).toEqual([{ kind: 'started' }]);
  });
});
