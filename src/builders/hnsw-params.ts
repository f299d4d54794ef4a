// What the builders do with the HNSW parameters k-NN sends. k-NN accepts any m, ef_construction and ef_search
// above 0 (Java ints), so the service accepts them all too, and clamps the values no builder can use as given:
//   m                 [2, 256]    Faiss's level multiplier is 1/ln(m), undefined for m = 1; above 256 (512 links
//                                 per node on the base level) the graph's memory grows with no gain in recall.
//                                 The GPU builder also caps its graph degree (2m) at 192 (src/builders/gpu.ts).
//   ef_construction   [1, 10000]  the candidate list while building; past a few thousand only the build time grows.
//   ef_search         kept        only stored in the file (k-NN's query-time default), never used to build.
// The file records the values actually used. API.md and README.md list the same table.

export interface HnswParameters {
  readonly m: number;
  readonly efConstruction: number;
  readonly efSearch: number;
}

export const HNSW_CLAMP = {
  m: { min: 2, max: 256 },
  efConstruction: { min: 1, max: 10_000 },
} as const;

/** The request's names for the clamped values (the change lines name what the client sent). */
const WIRE_NAMES = { m: 'm', efConstruction: 'ef_construction' } as const;

const clamp = (v: number, { min, max }: { min: number; max: number }) => Math.min(max, Math.max(min, v));

/** The parameters the builders use, and a line per changed value (for the job's log). */
export function clampHnswParameters(p: HnswParameters): { params: HnswParameters; changes: string[] } {
  const params = {
    m: clamp(p.m, HNSW_CLAMP.m),
    efConstruction: clamp(p.efConstruction, HNSW_CLAMP.efConstruction),
    efSearch: p.efSearch,
  };
  const changes = (['m', 'efConstruction'] as const)
    .filter((k) => params[k] !== p[k])
    .map((k) => `${WIRE_NAMES[k]} ${p[k]} -> ${params[k]}`);
  return { params, changes };
}
