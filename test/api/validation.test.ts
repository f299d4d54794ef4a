// Every validation rule of POST /_build: a good and a bad value per field, defaults, numeric strings,
// unknown keys, cross-field rules, and the 422 body that names the field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LIMITS } from '../../src/api/schemas.js';
import { HNSW_CLAMP } from '../../src/builders/hnsw-params.js';
import { jobSpecFor } from '../helpers/job-spec.js';
import { knnBuildBody } from '../helpers/knn-client.js';
import { type TestService, startTestService } from '../helpers/service.js';

let t: TestService;
let seq = 0;
beforeAll(async () => {
  t = await startTestService({ REQUEST_STORE_MAX_SIZE: '100000', MAX_WORKERS: '1' });
});
afterAll(async () => t.close());

/** A valid body with a fresh vector_path (so every accepted request is a new job), then overrides. */
function body(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  seq += 1;
  return knnBuildBody({
    vector_path: `v/seg_${seq}.knnvec`,
    doc_id_path: `v/seg_${seq}.knndid`,
    ...overrides,
  });
}

async function post(payload: unknown, contentType = 'application/json; charset=UTF-8') {
  const res = await fetch(`${t.url}/_build`, {
    method: 'POST',
    headers: { 'Content-Type': contentType },
    body: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function withParams(params: Record<string, unknown>, index: Record<string, unknown> = {}) {
  return {
    index_parameters: {
      space_type: 'l2',
      algorithm: 'hnsw',
      algorithm_parameters: { ef_construction: 100, ef_search: 100, m: 16, ...params },
      ...index,
    },
  };
}

// [field as named in the 422 body, good override, bad override]
const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
  ['body.repository_type', { repository_type: 's3' }, { repository_type: 'gcs' }],
  ['body.container_name', { container_name: 'bucket-1' }, { container_name: '' }],
  ['body.container_name', { container_name: 'b' }, { container_name: 'a/b' }],
  ['body.vector_path', { vector_path: 'a/b.knnvec' }, { vector_path: 'a/b.knnvec.txt' }],
  [
    'body.vector_path',
    { vector_path: 'x.knnvec' },
    { vector_path: 'x'.repeat(LIMITS.pathLength) + '.knnvec' },
  ],
  ['body.doc_id_path', { doc_id_path: 'a/b.knndid' }, { doc_id_path: '' }],
  ['body.tenant_id', { tenant_id: 'c' }, { tenant_id: 'x'.repeat(LIMITS.tenantIdLength + 1) }],
  ['body.tenant_id', { tenant_id: '' }, { tenant_id: 5 }],
  ['body.dimension', { dimension: 1 }, { dimension: 0 }],
  ['body.dimension', { dimension: LIMITS.maxDimension }, { dimension: LIMITS.maxDimension + 1 }],
  [
    'body.dimension',
    { data_type: 'binary', dimension: LIMITS.maxBinaryDimension },
    { data_type: 'binary', dimension: LIMITS.maxBinaryDimension + 8 },
  ],
  ['body.dimension', { dimension: '768' }, { dimension: 7.5 }],
  ['body.dimension', { dimension: 768 }, { dimension: '7.5' }],
  ['body.dimension', { dimension: 768 }, { dimension: null }],
  ['body.doc_count', { doc_count: 5 }, { doc_count: 4 }],
  ['body.doc_count', { doc_count: '1000' }, { doc_count: LIMITS.maxDocCount + 1 }],
  ['body.doc_count', { doc_count: 1000 }, { doc_count: 'many' }],
  ['body.data_type', { data_type: 'half_float' }, { data_type: 'float16' }],
  ['body.data_type', { data_type: 'byte' }, { data_type: 'FLOAT' }],
  ['body.engine', { engine: 'faiss' }, { engine: 'nmslib' }],
  ['body.skip_stored_vectors', { skip_stored_vectors: true }, { skip_stored_vectors: 'yes' }],
  [
    'body.index_parameters.space_type',
    withParams({}, { space_type: 'innerproduct' }),
    withParams({}, { space_type: 'cosine' }),
  ],
  [
    'body.index_parameters.algorithm',
    withParams({}, { algorithm: 'hnsw' }),
    withParams({}, { algorithm: 'ivf' }),
  ],
  ['body.index_parameters.algorithm_parameters.m', withParams({ m: LIMITS.maxM }), withParams({ m: 0 })],
  [
    'body.index_parameters.algorithm_parameters.m',
    withParams({ m: '32' }),
    withParams({ m: LIMITS.maxM + 1 }),
  ],
  [
    'body.index_parameters.algorithm_parameters.ef_construction',
    withParams({ ef_construction: 512 }),
    withParams({ ef_construction: 0 }),
  ],
  [
    'body.index_parameters.algorithm_parameters.ef_construction',
    withParams({ ef_construction: '64' }),
    withParams({ ef_construction: LIMITS.maxEf + 1 }),
  ],
  [
    'body.index_parameters.algorithm_parameters.ef_search',
    withParams({ ef_search: 2 }),
    withParams({ ef_search: -1 }),
  ],
  [
    'body.index_parameters.algorithm_parameters.ef_search',
    withParams({ ef_search: LIMITS.maxEf }),
    withParams({ ef_search: true }),
  ],
];

describe('POST /_build validation', () => {
  it.each(cases)(
    '%s: accepts the good value and names the field for the bad one',
    async (field, good, bad) => {
      const ok = await post(body(good));
      expect(ok.status, JSON.stringify(ok.json)).toBe(200);
      const res = await post(body(bad));
      expect(res.status).toBe(422);
      expect(res.json.detail).toBe('Validation Error');
      const errors = res.json.errors as { field: string; message: string; type: string }[];
      expect(errors.map((e) => e.field)).toContain(field);
      for (const e of errors) {
        expect(Object.keys(e).sort()).toEqual(['field', 'message', 'type']);
        expect(e.message.length).toBeGreaterThan(0);
      }
    },
  );

  it.each(['container_name', 'vector_path', 'doc_id_path', 'dimension', 'doc_count'])(
    'requires %s',
    async (field) => {
      const b = body();
      delete b[field];
      const res = await post(b);
      expect(res.status).toBe(422);
      expect(res.json.errors).toContainEqual({
        field: `body.${field}`,
        message: 'Field required',
        type: 'missing',
      });
    },
  );

  it('fills every default of the contract', async () => {
    const minimal = {
      container_name: 'b',
      vector_path: 'd/min.knnvec',
      doc_id_path: 'd/min.knndid',
      dimension: 8,
      doc_count: 10,
    };
    const res = await post(minimal);
    expect(res.status).toBe(200);
    await t.builds.started(1);
    const job = t.service.store.get(res.json.job_id as string)!;
    expect(job.spec).toEqual({
      containerName: 'b',
      vectorPath: 'd/min.knnvec',
      docIdPath: 'd/min.knndid',
      tenantId: '',
      dimension: 8,
      docCount: 10,
      dataType: 'float',
      spaceType: 'l2',
      m: 16,
      efConstruction: 100,
      efSearch: 100,
      skipStoredVectors: false,
    });
  });

  it('converts integers sent as numeric strings (curl users) to numbers', async () => {
    const res = await post(body({ dimension: '128', doc_count: ' 2000 ', ...withParams({ m: '8' }) }));
    expect(res.status).toBe(200);
    const job = t.service.store.get(res.json.job_id as string)!;
    expect(job.spec).toMatchObject({ dimension: 128, docCount: 2000, m: 8 });
  });

  it('accepts and ignores unknown keys at every level (k-NN adds fields), keeping them out of the job', async () => {
    const ignored = await post(
      body({
        surprise: 1,
        ...withParams({ encoder: { name: 'sq' }, future_knob: 3 }, { space_type: 'l2', new_option: [1] }),
      }),
    );
    expect(ignored.status, JSON.stringify(ignored.json)).toBe(200);
    const job = t.service.store.get(ignored.json.job_id as string)!;
    expect(Object.keys(job.spec).sort()).toEqual(Object.keys(jobSpecFor()).sort());
    expect(job.spec).toMatchObject({ spaceType: 'l2', m: 16, efConstruction: 100, efSearch: 100 });
    // Each unknown key is logged once (at debug), not on every segment k-NN sends.
    const key = `knob_${seq}`;
    for (let i = 0; i < 2; i++) expect((await post(body({ [key]: true }))).status).toBe(200);
    const lines = t.logs.filter((l) => l.includes(key));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 20, keys: [key] });
  });

  it('accepts every positive m and ef k-NN may send, clamping the extreme ones for the builders', async () => {
    const res = await post(body(withParams({ m: 1, ef_construction: 2 ** 31 - 1, ef_search: 1 })));
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    const job = t.service.store.get(res.json.job_id as string)!;
    expect(job.spec).toMatchObject({
      m: HNSW_CLAMP.m.min,
      efConstruction: HNSW_CLAMP.efConstruction.max,
      efSearch: 1,
    });
    const big = await post(body(withParams({ m: 100_000 })));
    expect(t.service.store.get(big.json.job_id as string)!.spec.m).toBe(HNSW_CLAMP.m.max);
  });

  it('treats duplicate slashes as one (a k-NN endpoint with a trailing slash calls //_build)', async () => {
    const res = await fetch(`${t.url}//_build`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=UTF-8' },
      body: JSON.stringify(body()),
    });
    expect(res.status).toBe(200);
    const { job_id } = (await res.json()) as { job_id: string };
    const status = await fetch(`${t.url}//_status/${job_id}`);
    expect(status.status).toBe(200);
    expect(((await status.json()) as { task_status: string }).task_status).toMatch(/_INDEX_BUILD$/);
  });

  it('accepts binary with every space type k-NN sends; hamming only with binary; binary dimension in whole bytes', async () => {
    const hammingFloat = await post(body(withParams({}, { space_type: 'hamming' })));
    expect(hammingFloat.status).toBe(422);
    expect(JSON.stringify(hammingFloat.json)).toContain('body.index_parameters.space_type');
    // k-NN 3.2+ sends binary-quantized fields as binary with the field's l2 or innerproduct.
    for (const space_type of ['l2', 'innerproduct']) {
      const binary = await post(
        body({ data_type: 'binary', dimension: 32_768, ...withParams({}, { space_type }) }),
      );
      expect(binary.status, space_type).toBe(200);
    }
    const binaryOdd = await post(
      body({ data_type: 'binary', dimension: 12, ...withParams({}, { space_type: 'hamming' }) }),
    );
    expect(binaryOdd.status).toBe(422);
    expect(binaryOdd.json.errors).toContainEqual(expect.objectContaining({ field: 'body.dimension' }));
    const binaryOk = await post(
      body({ data_type: 'binary', dimension: 256, ...withParams({}, { space_type: 'hamming' }) }),
    );
    expect(binaryOk.status).toBe(200);
  });

  it('reports every bad field at once', async () => {
    const res = await post(body({ dimension: 0, doc_count: 1, data_type: 'x' }));
    const fields = (res.json.errors as { field: string }[]).map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['body.dimension', 'body.doc_count', 'body.data_type']));
  });

  it('answers malformed JSON with 400, a wrong media type with 415 and an oversized body with 413', async () => {
    expect((await post('{"dimension": ')).status).toBe(400);
    expect((await post(body(), 'text/plain')).status).toBe(415);
    const huge = await post(body({ tenant_id: 'x'.repeat(t.settings.bodyLimitBytes) }));
    expect(huge.status).toBe(413);
    expect(typeof huge.json.detail).toBe('string');
    expect((await post([1, 2])).status).toBe(422);
  });
});
