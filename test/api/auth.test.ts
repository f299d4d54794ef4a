// Optional Basic auth: 401 with WWW-Authenticate when missing or wrong, open heart beat, no secret in logs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { basicCredentialsMatch } from '../../src/api/auth.js';
import { KnnClient, knnBuildBody } from '../helpers/knn-client.js';
import { type TestService, startTestService } from '../helpers/service.js';

const USER = 'knn-cluster';
const PASS = 's3cr3t-Pa55word';

describe('Basic auth', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ BASIC_AUTH_USERNAME: USER, BASIC_AUTH_PASSWORD: PASS });
  });
  afterAll(async () => t.close());

  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

  it.each([
    ['no header', undefined],
    ['wrong password', basic(USER, 'nope')],
    ['wrong user', basic('other', PASS)],
    ['password prefix', basic(USER, PASS.slice(0, -1))],
    ['not basic', `Bearer ${PASS}`],
    ['garbage', 'Basic %%%'],
  ])('answers 401 with WWW-Authenticate for %s', async (_name, header) => {
    for (const path of ['/_status/abc', '/_jobs']) {
      const res = await fetch(t.url + path, { headers: header ? { Authorization: header } : {} });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    }
    const post = await fetch(`${t.url}/_build`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(header ? { Authorization: header } : {}) },
      body: JSON.stringify(knnBuildBody()),
    });
    expect(post.status).toBe(401);
  });

  it('lets the right credentials through (k-NN keystore credentials) and keeps the heart beat open', async () => {
    const client = new KnnClient({ endpoint: t.url, username: USER, password: PASS });
    const id = await client.build(knnBuildBody());
    expect((await client.status(id)).task_status).toBe('RUNNING_INDEX_BUILD');
    expect((await fetch(`${t.url}/_heart_beat`)).status).toBe(200);
  });

  it('never writes the password or the Authorization header to the log', () => {
    const all = t.logs.join('\n');
    expect(all).not.toContain(PASS);
    expect(all).not.toContain(Buffer.from(`${USER}:${PASS}`).toString('base64'));
    expect(all).toContain('authentication failed');
  });

  it('compares whole credentials (no prefix, no missing colon)', () => {
    const h = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(basicCredentialsMatch(h('u:p'), 'u', 'p')).toBe(true);
    expect(basicCredentialsMatch(h('u:p:x'), 'u', 'p:x')).toBe(true);
    expect(basicCredentialsMatch(h('u:'), 'u', 'p')).toBe(false);
    expect(basicCredentialsMatch(h('up'), 'u', 'p')).toBe(false);
    expect(basicCredentialsMatch(undefined, 'u', 'p')).toBe(false);
  });
});
