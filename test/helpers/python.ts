// Runs Python with real Faiss for read-back checks: Faiss 1.15 from .venv-faiss (scripts/setup.sh --test),
// Debian's Faiss 1.7.3 from /usr/bin/python3 (python3-faiss) for old-cluster compatibility.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const FAISS_115_PYTHON = path.join(REPO_ROOT, '.venv-faiss/bin/python');
export const FAISS_173_PYTHON = '/usr/bin/python3';

export function faissPythonAvailable(python = FAISS_115_PYTHON): boolean {
  return existsSync(python);
}

/** Runs `python script args...`; resolves with stdout, rejects with stderr on a non-zero exit. */
export function runPython(
  python: string,
  script: string,
  args: string[] = [],
  input?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${path.basename(script)} exited ${code}: ${err.trim()}`)),
    );
    child.stdin.end(input ?? '');
  });
}

/** Runs a Python script that prints one JSON document on stdout. */
export async function runPythonJson<T>(
  python: string,
  script: string,
  args: string[] = [],
  input?: string,
): Promise<T> {
  return JSON.parse(await runPython(python, script, args, input)) as T;
}
