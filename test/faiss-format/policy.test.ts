// Format choice as data: the default loads everywhere k-NN's remote build exists, `reference` reproduces the
// reference builder, and every preset only names layouts the writer accepts.
import { describe, expect, it } from 'vitest';

import { FaissFormatError } from '../../src/faiss-format/errors.js';
import type { FormatPolicy } from '../../src/faiss-format/policy.js';
import {
  DEFAULT_FORMAT_POLICY,
  FORMAT_POLICIES,
  FORMAT_POLICY_NAMES,
  checkFormatPolicy,
  chooseFormat,
  formatPolicy,
} from '../../src/faiss-format/policy.js';
import { DATA_TYPES } from '../../src/vectors/types.js';

describe('format policies', () => {
  it('default to `compatible`, which never emits IHc2 or IBHc (Faiss < 1.12, k-NN 2.19-3.1, cannot read them)', () => {
    expect(DEFAULT_FORMAT_POLICY).toBe('compatible');
    const used = DATA_TYPES.flatMap((t) => [
      FORMAT_POLICIES.compatible[t].cpu,
      FORMAT_POLICIES.compatible[t].gpu,
    ]);
    expect(used).not.toContain('IHc2');
    expect(used).not.toContain('IBHc');
    expect(chooseFormat({ dataType: 'float', builder: 'cpu' })).toEqual({
      index: 'IHNf',
      storage: 'flat',
      needsHierarchicalGraph: true,
    });
    expect(chooseFormat({ dataType: 'float', builder: 'gpu' })).toEqual({
      index: 'IHNc',
      storage: 'flat',
      needsHierarchicalGraph: false,
    });
  });

  it('`reference` reproduces the reference builder whatever built the graph', () => {
    const reference = formatPolicy('reference');
    for (const builder of ['cpu', 'gpu'] as const) {
      expect(chooseFormat({ dataType: 'float', builder }, reference)).toMatchObject({
        index: 'IHNc',
        storage: 'flat',
      });
      expect(chooseFormat({ dataType: 'half_float', builder }, reference)).toMatchObject({
        index: 'IHc2',
        storage: 'sq-fp16',
      });
      expect(chooseFormat({ dataType: 'byte', builder }, reference)).toMatchObject({
        index: 'IHNs',
        storage: 'sq-int8',
      });
      expect(chooseFormat({ dataType: 'binary', builder }, reference)).toMatchObject({
        index: 'IBHc',
        storage: 'binary-flat',
      });
    }
  });

  it('give skip_stored_vectors a CAGRA layout over null storage, whatever the policy and builder', () => {
    // k-NN wires Lucene's vectors into a null storage only under IHNc/IHc2 and binary HNSW.
    for (const name of FORMAT_POLICY_NAMES) {
      for (const builder of ['cpu', 'gpu'] as const) {
        for (const dataType of ['float', 'half_float', 'byte'] as const) {
          expect(chooseFormat({ dataType, builder, skipStoredVectors: true }, formatPolicy(name))).toEqual({
            index: 'IHNc',
            storage: 'none',
            needsHierarchicalGraph: false,
          });
        }
        expect(
          chooseFormat({ dataType: 'binary', builder, skipStoredVectors: true }, formatPolicy(name)),
        ).toEqual({ index: 'IBHc', storage: 'none', needsHierarchicalGraph: false });
      }
    }
  });

  it('say which layouts need an entry point', () => {
    expect(chooseFormat({ dataType: 'binary', builder: 'gpu' }).needsHierarchicalGraph).toBe(true);
    expect(
      chooseFormat({ dataType: 'binary', builder: 'gpu' }, formatPolicy('modern')).needsHierarchicalGraph,
    ).toBe(false);
  });

  it('are all valid, and a bad setting or table is refused with the valid choices', () => {
    for (const name of FORMAT_POLICY_NAMES) expect(() => checkFormatPolicy(formatPolicy(name))).not.toThrow();
    expect(() => formatPolicy('newest')).toThrow(
      /unknown Faiss format policy 'newest' \(one of compatible, reference, modern\)/,
    );
    const broken: FormatPolicy = { ...FORMAT_POLICIES.compatible, float: { cpu: 'IHNs', gpu: 'IHNc' } };
    expect(() => checkFormatPolicy(broken)).toThrow(FaissFormatError);
    expect(() => checkFormatPolicy(broken)).toThrow(/float vectors go into IHNf or IHNc or IHc2, not IHNs/);
  });
});
