// `inspect`: prints the structure of one of our Faiss index files (bin/ wires it to the command line). It reads
// the file through the checking reader, so a damaged file fails with the reader's message instead of a summary.
import type { FaissIndexSummary } from '../faiss-format/reader.js';
import { readFaissIndexFile } from '../faiss-format/reader.js';

/** Where the text goes (process.stdout, a test buffer, ...). */
export interface TextOutput {
  write(text: string): unknown;
}

export interface InspectOptions {
  /** Print the summary as JSON instead of text. */
  readonly json?: boolean;
}

/** Reads `path`, prints its structure to `out` and returns the summary; throws FaissFormatError on a bad file. */
export async function inspectFaissFile(
  path: string,
  out: TextOutput,
  options: InspectOptions = {},
): Promise<FaissIndexSummary> {
  const summary = readFaissIndexFile(path);
  out.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(path, summary));
  return summary;
}

/** The text form of a summary. */
export function formatSummary(path: string, s: FaissIndexSummary): string {
  const h = s.hnsw;
  const lines = [
    `${path}: ${s.fileBytes} bytes, Faiss ${s.idMap} > ${s.index} > ${s.storage}`,
    row(
      'vectors',
      `${s.ntotal} × ${s.dimension}${s.metric === 'hamming' ? ' bits' : ''}, metric ${metricName(s)}`,
    ),
    row('ids', `${s.ids.count} doc ids, ${s.ids.first} .. ${s.ids.last}, strictly increasing`),
    row(
      'hnsw',
      `M ${h.M} (level 0: ${h.cumNeighborPerLevel[1]} slots per node), ${h.assignProbas.length} level tables, ` +
        `efConstruction ${h.efConstruction}, efSearch ${h.efSearch}`,
    ),
    row(
      'entry',
      h.entryPoint === -1 ? 'none (base level only)' : `node ${h.entryPoint}, max_level ${h.maxLevel}`,
    ),
    row('levels', h.nodesPerLevel.map((n, l) => `level ${l}: ${n} nodes`).join(', ')),
    row(
      'links',
      h.linksPerLevel.map((n, l) => `level ${l}: ${n}`).join(', ') +
        ` (level-0 degree min ${h.baseDegree.min}, mean ${h.baseDegree.mean.toFixed(1)}, max ${h.baseDegree.max})`,
    ),
  ];
  if (s.cagra) {
    const c = s.cagra;
    const numeric =
      c.numericType === undefined ? '' : `, numeric_type ${c.numericType === 1 ? 'float16' : 'float32'}`;
    lines.push(
      row(
        'cagra',
        `base_level_only ${yes(c.baseLevelOnly)}, keep_max_size_level0 ${yes(c.keepMaxSizeLevel0)}, ` +
          `${c.numBaseLevelSearchEntrypoints} random entry points${numeric}`,
      ),
    );
  }
  lines.push(row('storage', storageText(s)));
  if (s.trailingBytes > 0)
    lines.push(row('trailing', `${s.trailingBytes} bytes after the id map (ignored by Faiss)`));
  lines.push('sections', `  ${'offset'.padStart(12)}  ${'bytes'.padStart(12)}  name`);
  for (const sec of s.sections)
    lines.push(`  ${String(sec.offset).padStart(12)}  ${String(sec.bytes).padStart(12)}  ${sec.name}`);
  return `${lines.join('\n')}\n`;
}

function row(label: string, text: string): string {
  return `  ${label.padEnd(9)} ${text}`;
}

function yes(flag: boolean): string {
  return flag ? 'yes' : 'no';
}

function metricName(s: FaissIndexSummary): string {
  if (s.metric === 'hamming') return `Hamming (header metric_type ${s.metricType})`;
  return s.metric === 'l2' ? 'L2' : 'inner product';
}

function storageText(s: FaissIndexSummary): string {
  if (!s.vectors) return 'null (vectors not stored: skip_stored_vectors)';
  const kind = s.vectors.sqType
    ? `scalar quantizer ${s.vectors.sqType}`
    : s.storage === 'IBxF'
      ? 'binary flat'
      : 'flat float32';
  return `${s.storage} ${kind}, ${s.vectors.codeSize} bytes per vector, ${s.vectors.bytes} bytes`;
}
