// GET /_heart_beat: liveness (open even when Basic auth is configured).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

import { HeartBeatResponse } from './schemas.js';

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/_heart_beat',
    { schema: { summary: 'Liveness', tags: ['operations'], response: { 200: HeartBeatResponse } } },
    async () => ({ status: 'ok' as const }),
  );
};
