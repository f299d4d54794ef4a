// POST /_build: validate, admit (or find the existing job), answer {"job_id"}.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

import type { JobScheduler } from '../jobs/scheduler.js';
import { BuildRequest, BuildResponse, ErrorResponse, ValidationErrorResponse } from './schemas.js';
import { RequestValidationError, coerceIntegerStrings, crossFieldErrors } from './validation.js';

export const buildRoutes: FastifyPluginAsyncTypebox<{ scheduler: JobScheduler }> = async (
  app,
  { scheduler },
) => {
  app.post(
    '/_build',
    {
      schema: {
        summary: 'Start an index build (or find the job already building this segment)',
        tags: ['k-NN'],
        body: BuildRequest,
        response: {
          200: BuildResponse,
          409: ErrorResponse,
          422: ValidationErrorResponse,
          503: ErrorResponse,
          507: ErrorResponse,
        },
      },
      preValidation: async (request) => {
        coerceIntegerStrings(BuildRequest, request.body);
      },
    },
    async (request) => {
      const errors = crossFieldErrors(request.body);
      if (errors.length > 0) throw new RequestValidationError(errors);
      const { job, started } = scheduler.submit(withKnownParameters(request.body));
      request.log.info(
        { jobId: job.id, started, vectorPath: job.request.vector_path },
        started ? 'build accepted' : 'build already known',
      );
      return { job_id: job.id };
    },
  );
};

/** Drops unknown keys inside algorithm_parameters (accepted, ignored) so they go no further. */
function withKnownParameters(r: BuildRequest): BuildRequest {
  const { ef_construction, ef_search, m } = r.index_parameters.algorithm_parameters;
  return {
    ...r,
    index_parameters: { ...r.index_parameters, algorithm_parameters: { ef_construction, ef_search, m } },
  };
}
