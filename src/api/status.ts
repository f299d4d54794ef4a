// GET /_status/{job_id}: exactly task_status, file_name, error_message (the schema forbids anything else).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

import type { JobBackend } from '../jobs/backend.js';
import { NotFoundError } from './errors.js';
import { ErrorResponse, StatusParams, StatusResponse } from './schemas.js';

export const statusRoutes: FastifyPluginAsyncTypebox<{ backend: JobBackend }> = async (app, { backend }) => {
  app.get(
    '/_status/:job_id',
    {
      schema: {
        summary: 'Status of a build job (polled by k-NN)',
        tags: ['k-NN'],
        params: StatusParams,
        response: { 200: StatusResponse, 404: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => {
      const s = await backend.status(request.params.job_id);
      if (!s) throw new NotFoundError();
      return { task_status: s.status, file_name: s.fileName, error_message: s.errorMessage };
    },
  );
};
