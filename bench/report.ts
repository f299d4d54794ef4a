// Shared output for benchmarks: a table on stdout and the full results as JSON in bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type Row = Record<string, string | number | boolean | null>;

/** Prints rows as an aligned text table (columns from the first row's keys). */
export function printTable(title: string, rows: Row[]): void {
  console.log(`\n${title}`);
  if (rows.length === 0) return void console.log('(no rows)');
  const cols = Object.keys(rows[0]!);
  const cell = (v: Row[string]) => (typeof v === 'number' ? formatNumber(v) : String(v ?? ''));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c] ?? null).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  console.log(line(cols));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c] ?? null))));
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3);
}

/** Writes bench/results/<name>.json with the machine it ran on; returns the path. */
export function writeResults(name: string, results: unknown): string {
  const dir = path.resolve(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const machine = {
    host: os.hostname(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: os.totalmem() / 2 ** 30,
    node: process.version,
  };
  writeFileSync(file, JSON.stringify({ name, date: new Date().toISOString(), machine, results }, null, 2));
  console.log(`\nresults: ${file}`);
  return file;
}
