// `npm run bench -- <name> [args]` runs bench/<name>.ts; without a name it lists the benchmarks.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const here = import.meta.dirname;
const names = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'report.ts'].includes(f))
  .map((f) => f.slice(0, -3));
// `report` renders the recorded results as charts (bench/charts.ts; report.ts is the shared table/JSON helper).
const name = process.argv[2] === 'report' ? 'charts' : process.argv[2];
if (!name || !names.includes(name)) {
  console.log(
    `usage: npm run bench -- <name> [args]\nbenchmarks: ${names.join(', ') || '(none yet)'}\n` +
      'charts of the recorded results: npm run bench -- report',
  );
  process.exit(name ? 1 : 0);
}
process.argv.splice(2, 1);
await import(pathToFileURL(path.join(here, `${name}.ts`)).href);
