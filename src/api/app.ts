// The HTTP application: Fastify with TypeBox schemas, one plugin per route group, one error handler.
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  LogController,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';

import type { JobBackend } from '../jobs/backend.js';
import { registerBasicAuth } from './auth.js';
import { buildRoutes } from './build.js';
import { errorHandler } from './errors.js';
import { healthRoutes } from './health.js';
import { jobsRoutes } from './jobs.js';
import { registerJsonBodyParser } from './json-body.js';
import { statusRoutes } from './status.js';

export interface AppOptions {
  log: Logger;
  backend: JobBackend;
  bodyLimitBytes: number;
  auth: { username: string; password: string } | null;
  version: string;
  /** More routes (e.g. metrics), registered after the core ones. */
  plugins?: ((app: FastifyInstance) => Promise<void>)[];
}

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: o.log as FastifyBaseLogger,
    // Fastify's two lines per request are replaced by one (logRequest below).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: o.bodyLimitBytes,
    // k-NN joins its endpoint setting and the path: an endpoint with a trailing slash gives //_build.
    routerOptions: { ignoreDuplicateSlashes: true },
    // _status must keep answering while the service drains; the scheduler refuses new builds instead.
    return503OnClosing: false,
    // A job id longer than the router takes is simply not a job (not Fastify's own error body).
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') void reply.code(404).send({ detail: 'Job not found' });
      else void reply.code(error.statusCode ?? 400).send({ detail: error.message });
    },
    ajv: {
      // Strict: no silent type coercion (numeric strings are converted explicitly for integer fields only),
      // unknown keys rejected rather than dropped, defaults filled in, every bad field reported.
      customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: true },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // JSON only: a body sent as text (e.g. curl -d without a content type) gets 415 naming the problem.
  app.removeContentTypeParser('text/plain');
  registerJsonBodyParser(app);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ detail: `no route ${request.method} ${request.url.split('?')[0]}` });
  });
  app.addHook('onResponse', logRequest);
  if (o.auth) registerBasicAuth(app, o.auth);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'k-NN remote index build service',
        description: 'Builds Faiss HNSW indexes for OpenSearch k-NN on a GPU (or CPU). See API.md.',
        version: o.version,
      },
      components: o.auth ? { securitySchemes: { basic: { type: 'http', scheme: 'basic' } } } : {},
      ...(o.auth ? { security: [{ basic: [] }] } : {}),
    },
  });
  await app.register(buildRoutes, { backend: o.backend });
  await app.register(statusRoutes, { backend: o.backend });
  await app.register(jobsRoutes, { backend: o.backend });
  await app.register(healthRoutes, { backend: o.backend });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  for (const plugin of o.plugins ?? []) await plugin(app);
  return app;
}

// One line per request. k-NN polls _status in a tight loop, so successful polls and probes log at debug.
const QUIET_PATHS = /^\/(_status\/|_heart_beat$|metrics$)/;

async function logRequest(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const path = (request.url.split('?')[0] ?? '').replace(/\/{2,}/g, '/');
  const quiet = reply.statusCode < 400 && request.method === 'GET' && QUIET_PATHS.test(path);
  request.log[quiet ? 'debug' : 'info'](
    {
      method: request.method,
      url: path,
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
    },
    'request',
  );
}
