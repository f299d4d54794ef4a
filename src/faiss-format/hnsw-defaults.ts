// Faiss's default HNSW level tables for a given M (HNSW::set_default_probas), reproduced bit for bit: Faiss
// computes each probability in double from float32 operands and stores it rounded to float32, and stops at the
// first level whose probability is below 1e-9. Checked against Faiss 1.7.3 and 1.15 for M = 2..128.

/** assign_probas: p_l = exp(-l / mult) * (1 - exp(-1 / mult)), mult = 1 / ln(M), while p_l >= 1e-9. */
export function defaultAssignProbas(M: number): Float64Array {
  checkM(M);
  const levelMult = Math.fround(1 / Math.log(M));
  const step = 1 - Math.exp(Math.fround(-1 / levelMult));
  const probas: number[] = [];
  for (let level = 0; ; level++) {
    const p = Math.fround(Math.exp(Math.fround(-level / levelMult)) * step);
    if (p < 1e-9) break;
    probas.push(p);
  }
  return Float64Array.from(probas);
}

/** cum_nneighbor_per_level: [0, 2M, 3M, 4M, ...], one entry per level plus the leading 0. */
export function defaultCumNeighborPerLevel(M: number): Int32Array {
  const levels = defaultAssignProbas(M).length;
  const cum = new Int32Array(levels + 1);
  for (let level = 0; level < levels; level++) cum[level + 1] = cum[level]! + (level === 0 ? 2 * M : M);
  return cum;
}

function checkM(M: number): void {
  if (!Number.isInteger(M) || M < 2) throw new RangeError(`HNSW M must be an integer >= 2, got ${M}`);
}
