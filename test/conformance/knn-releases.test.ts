// k-NN conformance: every file the service writes loads and searches in the k-NN releases that can send its
// request, judged by k-NN's own Faiss (the checkers of ../shared/knn-faiss, one per vendored Faiss build).
// For every data type x space type x skip_stored_vectors x format policy, through the real service (HTTP with
// the // paths an endpoint with a trailing slash gives, worker processes, the local object store), each file is
// loaded by all three checkers (check.ts) and:
// * the checkers that load it are exactly those releases.ts says (the policy table);
// * for every release that can send the request: ids are the doc ids, recall@10 >= 0.9 against exact ground truth,
//   and radial search (float types) returns >= 90% of the true neighbours inside the radius and nothing outside.
// skip_stored_vectors files hold no vectors: k-NN wires Lucene's own vectors into their null storage before it
// searches (FaissFlatIndexFactory), so the search checks run on the file with the vectors spliced in the same way.
// Results go to build/conformance/results-<builder>.json; `npm run conformance-table` turns them into README's
// table. CONFORMANCE_BUILDER=gpu runs it with the GPU builder (the GPU machine runs test/gpu/conformance.ts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, it } from 'vitest';

import { CHECKER_RELEASES, checkerPath } from '../helpers/knn-checker.js';
import { type RealService, startRealService } from '../helpers/real-service.js';
import { POLICIES, checkCombo, comboName, combos } from './check.js';
import { type ConformanceResult, resultsFile } from './results.js';

const BUILDER = (process.env.CONFORMANCE_BUILDER ?? 'cpu') as 'cpu' | 'gpu';

describe(`k-NN conformance (${BUILDER} builder): files load and search in k-NN's own Faiss`, () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'knn-conformance-'));
  const services = new Map<string, RealService>();
  const results: ConformanceResult[] = [];

  beforeAll(async () => {
    for (const release of CHECKER_RELEASES) checkerPath(release); // a clear error when the checkers are missing
    for (const policy of POLICIES) {
      mkdirSync(path.join(tmp, policy, 'bucket'), { recursive: true });
      services.set(
        policy,
        await startRealService(
          { kind: 'local', localRoot: path.join(tmp, policy) },
          { INDEX_FORMAT_POLICY: policy, BUILDER, MAX_WORKERS: '2', LOG_LEVEL: 'warn' },
          BUILDER,
        ),
      );
    }
  });

  afterAll(async () => {
    await Promise.all([...services.values()].map((s) => s.close()));
    rmSync(tmp, { recursive: true, force: true });
    if (results.length > 0) {
      const file = resultsFile(BUILDER);
      mkdirSync(path.dirname(file), { recursive: true });
      results.sort((a, b) => a.key.localeCompare(b.key));
      writeFileSync(file, `${JSON.stringify({ builder: BUILDER, results }, null, 1)}\n`);
    }
  });

  it.concurrent.each(combos().map((combo) => [comboName(combo), combo] as const))(
    '%s',
    { timeout: 300_000 },
    async (_name, combo) => {
      const svc = services.get(combo.policy)!;
      results.push(...(await checkCombo(svc.url, path.join(tmp, combo.policy, 'bucket'), BUILDER, combo)));
    },
  );
});
