// Operator endpoints (our extension, not used by k-NN): list jobs with their phase, cancel one.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

import type { JobStore } from '../jobs/job-store.js';
import type { JobScheduler } from '../jobs/scheduler.js';
import { NotFoundError } from './errors.js';
import { ErrorResponse, JobSummary, JobsResponse, StatusParams } from './schemas.js';

export const jobsRoutes: FastifyPluginAsyncTypebox<{ store: JobStore; scheduler: JobScheduler }> = async (
  app,
  { store, scheduler },
) => {
  app.get(
    '/_jobs',
    {
      schema: {
        summary: 'Every job the service holds, with its phase',
        tags: ['operations'],
        response: { 200: JobsResponse },
      },
    },
    async () => {
      const jobs = store.all().map((j) => j.summary());
      return {
        count: jobs.length,
        queued: jobs.filter((j) => j.phase === 'queued').length,
        running: jobs.filter((j) => j.task_status === 'RUNNING_INDEX_BUILD' && j.phase !== 'queued').length,
        jobs,
      };
    },
  );

  app.delete(
    '/_jobs/:job_id',
    {
      schema: {
        summary: 'Cancel a queued or running job: it ends FAILED_INDEX_BUILD with "cancelled"',
        tags: ['operations'],
        params: StatusParams,
        response: { 200: JobSummary, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (request, reply) => {
      const job = store.get(request.params.job_id);
      if (!job) throw new NotFoundError();
      if (!scheduler.cancel(job.id, 'cancelled')) {
        return reply.code(409).send({ detail: `job ${job.id} already finished (${job.status})` });
      }
      request.log.info({ jobId: job.id }, 'job cancelled by request');
      return job.summary();
    },
  );
};
