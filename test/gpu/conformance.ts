// The k-NN conformance suite (test/conformance) on the GPU machine: the bundled service with BUILDER=gpu, one
// per format policy, every combo built on the GPU and its file judged by k-NN's own Faiss checkers.
// scripts/gpu-check.sh runs the bundle (step `conformance`):
//   KNN_FAISS_CHECKERS=<folder of knn-faiss-check-*> node conformance.mjs <bundled main.js> [results.json]
// A dry run elsewhere: CONFORMANCE_BUILDER=cpu.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { POLICIES, checkCombo, comboName, combos } from '../conformance/check.js';
import type { ConformanceResult } from '../conformance/results.js';
import { CHECKER_RELEASES, checkerPath } from '../helpers/knn-checker.js';

const [mainJs, resultsPath] = process.argv.slice(2);
if (!mainJs) throw new Error('usage: conformance.mjs <bundled main.js> [results.json]');
const builder = (process.env.CONFORMANCE_BUILDER ?? 'gpu') as 'cpu' | 'gpu';
for (const release of CHECKER_RELEASES) checkerPath(release);

const root = path.join(os.tmpdir(), `knn-gpu-conformance-${process.pid}`);
const results: ConformanceResult[] = [];
const failures: string[] = [];
const t0 = performance.now();

for (const [p, policy] of POLICIES.entries()) {
  const store = path.join(root, policy);
  mkdirSync(path.join(store, 'bucket'), { recursive: true });
  const port = 11_000 + ((process.pid + p) % 20_000);
  const service = spawn(process.execPath, [mainJs], {
    env: {
      ...process.env,
      BUILDER: builder,
      INDEX_FORMAT_POLICY: policy,
      OBJECT_STORE: 'local',
      LOCAL_STORE_ROOT: store,
      PORT: String(port),
      HOST: '127.0.0.1',
      MAX_WORKERS: '2',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; i < 150; i++) {
      if (
        await fetch(`${url}/_heart_beat`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const mine = combos().filter((c) => c.policy === policy);
    await Promise.all(
      mine.map(async (combo) => {
        try {
          results.push(...(await checkCombo(url, path.join(store, 'bucket'), builder, combo)));
        } catch (e) {
          failures.push(`${comboName(combo)}: ${(e as Error).message}`);
        }
      }),
    );
  } finally {
    service.kill('SIGTERM');
    await new Promise((r) => service.on('exit', r));
  }
}
rmSync(root, { recursive: true, force: true });

results.sort((a, b) => a.key.localeCompare(b.key));
if (resultsPath) writeFileSync(resultsPath, `${JSON.stringify({ builder, results }, null, 1)}\n`);
console.log(
  `\n=== k-NN conformance (BUILDER=${builder}): ${combos().length} files in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
for (const r of results.filter((x) => x.releases.length > 0)) {
  const recall = r.recall === undefined ? '-' : r.recall.toFixed(3);
  const range = r.rangeRecall === undefined ? '-' : r.rangeRecall.toFixed(3);
  console.log(
    `${r.policy.padEnd(10)} ${`${r.dataType} ${r.space} d=${r.dimension}${r.skip ? ' skip' : ''}`.padEnd(34)} ` +
      `${r.layout.padEnd(10)} -${r.checker} (${r.releases.join(', ')})  loads ${r.loads}  recall ${recall}  range ${range}`,
  );
}
for (const f of failures) console.log(`FAIL ${f}`);
console.log(
  failures.length === 0 ? 'conformance: all files pass' : `conformance: ${failures.length} failure(s)`,
);
process.exitCode = failures.length === 0 ? 0 : 1;
