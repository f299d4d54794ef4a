// The OpenAPI document is generated from the same schemas that validate and serialize, and API.md documents
// every path and status code it declares.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { REPO_ROOT } from '../helpers/python.js';
import { type TestService, startTestService } from '../helpers/service.js';

interface OpenApi {
  openapi: string;
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>
  >;
}
interface Schema {
  properties?: Record<string, unknown>;
  additionalProperties?: boolean;
  required?: string[];
}

describe('OpenAPI', () => {
  let t: TestService;
  let doc: OpenApi;
  const apiMd = readFileSync(path.join(REPO_ROOT, 'API.md'), 'utf8');
  beforeAll(async () => {
    t = await startTestService();
    doc = (await (await fetch(`${t.url}/openapi.json`)).json()) as OpenApi;
  });
  afterAll(async () => t.close());

  it('is OpenAPI 3 and lists every route', () => {
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(
      ['/_build', '/_heart_beat', '/_jobs', '/_jobs/{job_id}', '/_status/{job_id}'].sort(),
    );
  });

  it('declares the k-NN status body as exactly three fields', () => {
    const schema =
      doc.paths['/_status/{job_id}']!.get!.responses['200']!.content!['application/json']!.schema;
    expect(Object.keys(schema.properties!).sort()).toEqual(['error_message', 'file_name', 'task_status']);
    expect(schema.additionalProperties).toBe(false);
  });

  it('is matched by API.md: every path, method and status code is documented', () => {
    for (const [p, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        expect(apiMd, `${method} ${p}`).toContain(`${method.toUpperCase()} ${p}`);
        for (const code of Object.keys(op.responses)) {
          expect(apiMd, `${method} ${p} ${code}`).toMatch(new RegExp(`\\b${code}\\b`));
        }
      }
    }
  });
});
