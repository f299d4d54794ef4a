// The entry node base-level graphs get (Faiss's range_search starts from it; k-NN 3.0-3.5 find nothing without).
import { describe, expect, it } from 'vitest';

import { centralNode, withEntryNode } from '../../src/builders/entry-node.js';
import type { HnswGraph } from '../../src/faiss-format/hnsw-graph.js';
import type { VectorSet } from '../../src/vectors/types.js';
import { toBits, toFloat16Array } from '../helpers/synthetic.js';

// Nine points on a line, 0..8: the one nearest their mean (4) is node 4 whatever the element type.
const line = Float32Array.from({ length: 9 * 2 }, (_, i) => (i % 2 === 0 ? Math.floor(i / 2) : 0));
const set = (dataType: VectorSet['dataType'], chunks: VectorSet['chunks'], dimension = 2): VectorSet => ({
  dataType,
  dimension,
  count: 9,
  chunks,
});

describe('entry node', () => {
  it('is the vector nearest the mean, for every element type and across chunks', () => {
    expect(centralNode(set('float', [line]))).toBe(4);
    expect(centralNode(set('float', [line.subarray(0, 6), line.subarray(6)]))).toBe(4);
    expect(centralNode(set('half_float', [toFloat16Array(line)]))).toBe(4);
    expect(centralNode(set('byte', [Int8Array.from(line)]))).toBe(4);
    // Binary: 8 bits per vector, vector i has its first i bits set; the mean has 4 bits set.
    const bits = new Float32Array(9 * 8).map((_, i) => (i % 8 < Math.floor(i / 8) ? 1 : -1));
    expect(centralNode(set('binary', [toBits(bits)], 8))).toBe(4);
  });

  it('goes only to base-level graphs without one, with max_level 0', () => {
    const base: HnswGraph = { M: 2, neighbors: new Int32Array(9 * 4).fill(-1), entryPoint: -1, maxLevel: -1 };
    expect(withEntryNode(base, set('float', [line]))).toMatchObject({ entryPoint: 4, maxLevel: 0 });
    const chosen = { ...base, entryPoint: 7, maxLevel: 0 };
    expect(withEntryNode(chosen, set('float', [line]))).toBe(chosen);
    const hierarchical = { ...base, levels: new Int32Array(9).fill(1), entryPoint: 0, maxLevel: 0 };
    expect(withEntryNode(hierarchical, set('float', [line]))).toBe(hierarchical);
  });
});
