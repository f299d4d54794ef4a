// GET /_status/{job_id}: exactly task_status, file_name, error_message (the schema forbids anything else).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

import type { JobStore } from '../jobs/job-store.js';
import { NotFoundError } from './errors.js';
import { ErrorResponse, StatusParams, StatusResponse } from './schemas.js';

export const statusRoutes: FastifyPluginAsyncTypebox<{ store: JobStore }> = async (app, { store }) => {
  app.get(
    '/_status/:job_id',
    {
      schema: {
        summary: 'Status of a build job (polled by k-NN)',
        tags: ['k-NN'],
        params: StatusParams,
        response: { 200: StatusResponse, 404: ErrorResponse },
      },
    },
    async (request) => {
      const job = store.get(request.params.job_id);
      if (!job) throw new NotFoundError();
      return job.statusResponse();
    },
  );
};
