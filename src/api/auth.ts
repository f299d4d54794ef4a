// Optional HTTP Basic auth (k-NN sends it when the cluster keystore holds a username and password).
// Credentials are compared in constant time and never logged.
import { createHash, timingSafeEqual } from 'node:crypto';

import type { FastifyInstance } from 'fastify';

/** Paths answered without credentials: liveness probes and metric scrapers hold none. */
const OPEN_PATHS = new Set(['/_heart_beat', '/metrics']);

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** True when `header` carries exactly these credentials; timing does not depend on where they differ. */
export function basicCredentialsMatch(
  header: string | undefined,
  username: string,
  password: string,
): boolean {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  const user = colon >= 0 ? decoded.slice(0, colon) : '';
  const pass = colon >= 0 ? decoded.slice(colon + 1) : '';
  // Compare fixed-size digests so lengths leak nothing either; evaluate both before combining.
  const userOk = timingSafeEqual(digest(user), digest(username));
  const passOk = timingSafeEqual(digest(pass), digest(password));
  return m !== null && colon >= 0 && userOk && passOk;
}

export function registerBasicAuth(
  app: FastifyInstance,
  credentials: { username: string; password: string },
): void {
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (OPEN_PATHS.has(path)) return;
    if (basicCredentialsMatch(request.headers.authorization, credentials.username, credentials.password))
      return;
    request.log.warn({ path }, 'authentication failed');
    return reply
      .code(401)
      .header('WWW-Authenticate', 'Basic realm="knn-remote-index-builder", charset="UTF-8"')
      .send({ detail: 'Not authenticated' });
  });
}
