// Error bodies at the edges of the API: every one is {"detail": ...} (or the 422 body) and says what is wrong.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { knnBuildBody } from '../helpers/knn-client.js';
import { type TestService, startTestService } from '../helpers/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService();
});
afterAll(async () => t.close());

describe('small error answers', () => {
  it.each([101, 128, 129, 2000])('answers a %i-character job id with {"detail"}', async (length) => {
    for (const [method, route] of [
      ['GET', '_status'],
      ['DELETE', '_jobs'],
    ] as const) {
      const res = await fetch(`${t.url}/${route}/${'a'.repeat(length)}`, { method });
      const json = (await res.json()) as Record<string, unknown>;
      expect(Object.keys(json)).toEqual(['detail']);
      expect(res.status).toBe(404);
      expect(json.detail).toBe('Job not found');
    }
  });

  it.each(['__proto__', 'constructor'])('says what is wrong with a %s key', async (key) => {
    const text = JSON.stringify(knnBuildBody()).replace(/^\{/, `{"${key}":{"prototype":{"x":1}},`);
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: text,
    });
    expect(res.status).toBe(400);
    const json = (await res.json()) as { detail: string };
    expect(json.detail).toMatch(/"__proto__" and "constructor" keys are not allowed/);
    expect(json.detail).not.toMatch(/not valid JSON/);
  });

  it('still calls broken JSON broken JSON', async () => {
    const res = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"a":',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/not valid JSON/);
  });
});
