// Runs k-NN's own Faiss checkers: one program per k-NN Faiss build (the Faiss commit a k-NN release vendors, with
// that release's patches), which loads a file with k-NN's IO flags and searches it the way k-NN's JNI layer does.
// They live outside the repository (KNN_FAISS_CHECKERS, default ../shared/knn-faiss next to the checkout); a
// missing checker is an error with the path and the fix, never a skip.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export const CHECKER_RELEASES = ['3.1', '3.5', '3.8'] as const;
export type CheckerRelease = (typeof CHECKER_RELEASES)[number];

const ROOT = path.resolve(import.meta.dirname, '../..');
export const CHECKER_DIR = process.env.KNN_FAISS_CHECKERS ?? path.resolve(ROOT, '../shared/knn-faiss');

/** The checker binary for a release; throws a message saying where it was looked for and what it needs. */
export function checkerPath(release: CheckerRelease): string {
  const file = path.join(CHECKER_DIR, `knn-faiss-check-${release}`);
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new Error(
      `k-NN's Faiss checker ${file} is missing or not executable. The conformance suite needs the three ` +
        `knn-faiss-check-{3.1,3.5,3.8} programs: set KNN_FAISS_CHECKERS to their folder (default ../shared/knn-faiss ` +
        `next to this checkout); they need libopenblas0, libgomp1 and libgfortran5 (scripts/setup.sh --test).`,
    );
  }
  return file;
}

/** The checker's first line: the file's structure as k-NN's Faiss read it. */
export interface CheckerStructure {
  checker: string;
  top_fourcc: string;
  inner_fourcc?: string;
  inner_class?: string;
  ntotal: number;
  d: number;
  id_map_size?: number;
  metric: string;
  entry_point?: number;
  max_level?: number;
  storage_class?: string | null;
  base_level_only?: boolean;
  warnings: string[];
}

export interface CheckerQuery {
  query: number;
  labels: number[];
  distances: number[];
  range_total?: number;
  range_labels?: number[];
  range_distances?: number[];
}

export interface CheckerRun {
  /** 0 OK, 1 usage/IO, 2 load failed, 3 search failed, 4 top level not an id map. */
  exitCode: number;
  structure?: CheckerStructure;
  queries: CheckerQuery[];
  error?: { error: string; stage: string };
}

export interface CheckerOptions {
  k: number;
  binary?: boolean;
  /** Also run range_search (k-NN radial search); L2 is squared distance, inner product a similarity floor. */
  radius?: number;
  ef?: number;
}

/** Runs one checker on one index file with the queries in `queryFile` (float32 rows, or code rows with binary). */
export function runChecker(
  release: CheckerRelease,
  indexFile: string,
  queryFile: string,
  o: CheckerOptions,
): Promise<CheckerRun> {
  const args = [indexFile, queryFile, String(o.k)];
  if (o.binary) args.push('--binary');
  if (o.radius !== undefined) args.push('--radius', String(o.radius));
  if (o.ef !== undefined) args.push('--ef', String(o.ef));
  return new Promise((resolve, reject) => {
    execFile(checkerPath(release), args, { maxBuffer: 256 * 2 ** 20 }, (err, stdout, stderr) => {
      const exitCode = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (exitCode === -1)
        return reject(new Error(`checker ${release} did not run: ${err?.message} ${stderr}`));
      const run: CheckerRun = { exitCode, queries: [] };
      for (const line of stdout.split('\n').filter(Boolean)) {
        const o = JSON.parse(line) as Record<string, unknown>;
        if ('error' in o) run.error = o as unknown as CheckerRun['error'];
        else if ('query' in o) run.queries.push(o as unknown as CheckerQuery);
        else run.structure = o as unknown as CheckerStructure;
      }
      resolve(run);
    });
  });
}
