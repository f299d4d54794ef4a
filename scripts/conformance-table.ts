// README's k-NN compatibility table, generated from the conformance suite's results (never written by hand):
//   npx vitest run test/conformance && npm run conformance-table
// Reads build/conformance/results-<builder>.json (written by test/conformance/knn-releases.test.ts), keeps a
// copy in docs/conformance/, and rewrites the table between the markers in README.md.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { ConformanceResult } from '../test/conformance/results.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const START = '<!-- conformance-table:start -->';
const END = '<!-- conformance-table:end -->';
const POLICIES = ['compatible', 'reference', 'modern'];
const TYPE_ORDER = ['float', 'half_float', 'byte', 'binary'];

function load(builder: string): ConformanceResult[] | null {
  const fresh = path.join(ROOT, 'build/conformance', `results-${builder}.json`);
  const kept = path.join(ROOT, 'docs/conformance', `results-${builder}.json`);
  if (existsSync(fresh)) {
    mkdirSync(path.dirname(kept), { recursive: true });
    copyFileSync(fresh, kept);
  }
  if (!existsSync(kept)) return null;
  return (JSON.parse(readFileSync(kept, 'utf8')) as { results: ConformanceResult[] }).results;
}

const fixed = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(2));
const typeLabel = (r: ConformanceResult) =>
  r.dataType === 'binary' && r.dimension > 256
    ? `binary, ${r.dimension.toLocaleString('en')} bits`
    : r.dataType;

/** One cell: the layout and what the checker did with it, over every space type of that row (worst case). */
function cell(rows: ConformanceResult[]): string {
  if (rows.length === 0) return '';
  // The storage follows from the index and space type; only a null storage is worth saying.
  const layouts = [...new Set(rows.map((r) => r.layout.replace(/\/(IxF2|IxFI|IxSQ|IBxF)$/, '')))].join(', ');
  if (!rows.every((r) => r.loads)) return `\`${layouts}\` **does not load**`;
  const min = (key: 'recall' | 'rangeRecall') => {
    const values = rows.map((r) => r[key]).filter((v): v is number => v !== undefined);
    return values.length === rows.length ? Math.min(...values) : undefined;
  };
  const range = rows[0]!.dataType === 'binary' ? 'n/a' : fixed(min('rangeRecall'));
  return `\`${layouts}\` ✓ ${fixed(min('recall'))} / ${range}`;
}

/** Which checkers loaded each layout, in words. */
function summary(rows: ConformanceResult[]): string {
  return [...new Set(rows.map((r) => r.layout))]
    .map((layout) => {
      const by = [...new Set(rows.filter((r) => r.layout === layout && r.loads).map((r) => `-${r.checker}`))];
      return `\`${layout}\` loads in ${by.length > 0 ? by.join(', ') : 'none of the checkers'}`;
    })
    .join('; ')
    .concat('.');
}

function table(results: ConformanceResult[], builder: string): string {
  const sent = results.filter((r) => r.releases.length > 0);
  const order = (r: ConformanceResult) =>
    `${TYPE_ORDER.indexOf(r.dataType)}|${String(r.dimension).padStart(6, '0')}|${r.skip}|${r.checker}`;
  sent.sort((a, b) => order(a).localeCompare(order(b)));
  const keys = [...new Set(sent.map((r) => `${typeLabel(r)}|${r.skip}|${r.releases[0]}|${r.checker}`))];
  const lines = [
    `| k-NN release (checker) | data type | skip_stored_vectors | ${POLICIES.map((p) => `\`${p}\``).join(' | ')} |`,
    `| --- | --- | --- | ${POLICIES.map(() => '---').join(' | ')} |`,
  ];
  for (const key of keys) {
    const [type, skip, releases, checker] = key.split('|');
    const rows = sent.filter(
      (r) =>
        typeLabel(r) === type &&
        String(r.skip) === skip &&
        r.releases[0] === releases &&
        r.checker === checker,
    );
    const cells = POLICIES.map((p) => cell(rows.filter((r) => r.policy === p)));
    lines.push(
      `| ${releases} (\`-${checker}\`) | ${type} | ${skip === 'true' ? 'yes' : 'no'} | ${cells.join(' | ')} |`,
    );
  }
  // Files no release asks for: every checker's row for them has no sending release.
  const fileOf = (r: ConformanceResult) => r.key.split('|').slice(0, 5).join('|');
  const sentFiles = new Set(sent.map(fileOf));
  const unsentRows = results.filter((r) => !sentFiles.has(fileOf(r)));
  const unsent = [...new Set(unsentRows.map((r) => typeLabel(r)))];
  const unsentLayouts = [...new Set(unsentRows.map((r) => `\`${r.layout}\``))];
  return [
    `${builder.toUpperCase()} builder, ${new Set(results.map((r) => r.key.split('|').slice(0, 5).join('|'))).size} files, ` +
      `each loaded by all three checkers; a cell is \`layout\` ✓ recall@10 / radial-search recall (worst over the ` +
      `space types sent: l2 and innerproduct, binary also hamming), or **does not load**.`,
    '',
    ...lines,
    '',
    `No k-NN release sends skip_stored_vectors with ${unsent.join(', ')}; those files are ${unsentLayouts.join(', ')}. ` +
      `Loaded as they are (vectors not wired in), ` +
      `${unsentLayouts.length > 0 ? summary(unsentRows) : ''}`,
  ].join('\n');
}

const parts: string[] = [];
for (const builder of ['cpu', 'gpu']) {
  const results = load(builder);
  if (results) parts.push(table(results, builder));
}
if (parts.length === 0) {
  console.error('no conformance results: run `npx vitest run test/conformance` first');
  process.exit(1);
}
const readme = path.join(ROOT, 'README.md');
const text = readFileSync(readme, 'utf8');
const from = text.indexOf(START);
const to = text.indexOf(END);
if (from < 0 || to < from) {
  console.error(`README.md has no ${START} ... ${END} markers`);
  process.exit(1);
}
writeFileSync(readme, `${text.slice(0, from + START.length)}\n${parts.join('\n\n')}\n${text.slice(to)}`);
console.log(`README.md: compatibility table from ${parts.length} result file(s)`);
