// GET /_heart_beat: liveness (open even when Basic auth is configured). Always 200 while the process runs, so
// a Redis outage does not make an orchestrator restart every replica; with QUEUE_BACKEND=redis the body says
// whether Redis is reachable ("status": "degraded", "backend": "down").
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

import type { JobBackend } from '../jobs/backend.js';
import { HeartBeatResponse } from './schemas.js';

export const healthRoutes: FastifyPluginAsyncTypebox<{ backend: JobBackend }> = async (app, { backend }) => {
  app.get(
    '/_heart_beat',
    { schema: { summary: 'Liveness', tags: ['operations'], response: { 200: HeartBeatResponse } } },
    async () => {
      if (backend.kind === 'memory') return { status: 'ok' as const };
      const h = await backend.health();
      return {
        status: h.up ? ('ok' as const) : ('degraded' as const),
        queue_backend: h.kind,
        backend: h.up ? ('up' as const) : ('down' as const),
        ...(h.replica ? { replica: h.replica } : {}),
        ...(h.detail ? { detail: h.detail } : {}),
      };
    },
  );
};
