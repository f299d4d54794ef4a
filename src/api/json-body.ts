// The JSON body parser: plain JSON.parse, plus a clear refusal of keys that could poison prototypes further on
// (Fastify's own parser refuses them too, but answers "Body is not valid JSON", which sends people looking for a
// syntax error that is not there).
import type { FastifyInstance } from 'fastify';

/** A 4xx the error handler answers as {"detail": message}. */
class BodyError extends Error {
  constructor(
    message: string,
    readonly statusCode = 400,
  ) {
    super(message);
    this.name = 'BodyError';
  }
}

export function registerJsonBodyParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.length === 0)
      return done(new BodyError("Body cannot be empty when content-type is set to 'application/json'"));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return done(new BodyError("Body is not valid JSON but content-type is set to 'application/json'"));
    }
    const forbidden = forbiddenKey(value, 'body');
    if (forbidden) {
      return done(
        new BodyError(`${forbidden}: "__proto__" and "constructor" keys are not allowed in a request body`),
      );
    }
    done(null, value);
  });
}

/** Where the first `__proto__` key, or `constructor` key holding a `prototype`, is (e.g. `body.a.__proto__`). */
function forbiddenKey(value: unknown, at: string): string | null {
  if (typeof value !== 'object' || value === null) return null;
  for (const [key, child] of Object.entries(value)) {
    const here = Array.isArray(value) ? `${at}[${key}]` : `${at}.${key}`;
    if (key === '__proto__') return here;
    if (key === 'constructor' && typeof child === 'object' && child !== null && 'prototype' in child)
      return here;
    const inner = forbiddenKey(child, here);
    if (inner) return inner;
  }
  return null;
}
