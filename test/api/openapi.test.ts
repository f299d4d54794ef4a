// The OpenAPI document is generated from the same schemas that validate and serialize, and API.md documents
// every route and, in that route's own section, every status code it declares.
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
      ['/_build', '/_heart_beat', '/_jobs', '/_jobs/{job_id}', '/_status/{job_id}', '/metrics'].sort(),
    );
  });

  it('declares the k-NN status body as exactly three fields', () => {
    const schema =
      doc.paths['/_status/{job_id}']!.get!.responses['200']!.content!['application/json']!.schema;
    expect(Object.keys(schema.properties!).sort()).toEqual(['error_message', 'file_name', 'task_status']);
    expect(schema.additionalProperties).toBe(false);
  });

  it('is matched by API.md: every route has its section, which documents each status code it declares', () => {
    // Sections start at "## `METHOD /path`"; a status code counts where it opens a table row or a code span
    // ("| 404 |", "`404 {...}`", "`200`"). The Authentication section's codes apply to every route.
    const sections = new Map<string, string>();
    for (const part of apiMd.split(/^## /m).slice(1)) {
      const heading = /^`([A-Z]+ \S+)`/.exec(part);
      sections.set(heading ? heading[1]! : part.split('\n', 1)[0]!, part);
    }
    const codesIn = (text: string) =>
      new Set([...text.matchAll(/(?:^\| |`)([1-5]\d\d)\b/gm)].map((m) => m[1]!));
    const everyRoute = codesIn(sections.get('Authentication') ?? '');
    for (const [p, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const route = `${method.toUpperCase()} ${p}`;
        const section = sections.get(route);
        expect(section, `API.md has no section "## \`${route}\`"`).toBeDefined();
        const documented = new Set([...codesIn(section!), ...everyRoute]);
        const undocumented = Object.keys(op.responses).filter((code) => !documented.has(code));
        expect(undocumented, `${route}: status codes missing from its API.md section`).toEqual([]);
      }
    }
  });
});
