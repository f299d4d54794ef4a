// Operator endpoints (our extension, not used by k-NN): list jobs with their phase, cancel one.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

import type { JobBackend } from '../jobs/backend.js';
import type { JobTiming, JobView } from '../jobs/job.js';
import { NotFoundError } from './errors.js';
import { ErrorResponse, JobSummary, JobsResponse, StatusParams } from './schemas.js';

export const jobsRoutes: FastifyPluginAsyncTypebox<{ backend: JobBackend }> = async (app, { backend }) => {
  app.get(
    '/_jobs',
    {
      schema: {
        summary: "Every job the service holds (every replica's with QUEUE_BACKEND=redis), with its phase",
        tags: ['operations'],
        response: { 200: JobsResponse, 503: ErrorResponse },
      },
    },
    async () => {
      const jobs = (await backend.list()).map(jobSummary);
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
        response: { 200: JobSummary, 404: ErrorResponse, 409: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const result = await backend.cancel(request.params.job_id, 'cancelled');
      if (result.outcome === 'unknown') throw new NotFoundError();
      const job = jobSummary(result.job);
      if (result.outcome === 'finished') {
        return reply.code(409).send({ detail: `job ${job.job_id} already finished (${job.task_status})` });
      }
      request.log.info({ jobId: job.job_id }, 'job cancelled by request');
      return job;
    },
  );
};

/** A job as /_jobs and DELETE /_jobs/{id} show it (JobSummary in schemas.ts). */
export function jobSummary(v: JobView): JobSummary {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    job_id: v.id,
    task_status: v.status,
    phase: v.phase,
    container_name: v.spec.containerName,
    vector_path: v.spec.vectorPath,
    tenant_id: v.spec.tenantId,
    dimension: v.spec.dimension,
    doc_count: v.spec.docCount,
    data_type: v.spec.dataType,
    builder: v.builder,
    progress: v.progress,
    bytes_downloaded: v.bytesDownloaded,
    bytes_uploaded: v.bytesUploaded,
    bytes_copied: v.bytesCopied,
    upload_path: v.uploadPath?.path ?? null,
    upload_path_reason: v.uploadPath?.reason ?? null,
    timing: timingSummary(v.timing),
    file_name: v.fileName,
    error_message: v.errorMessage,
    created_at: new Date(v.createdAt).toISOString(),
    started_at: iso(v.startedAt),
    finished_at: iso(v.finishedAt),
    estimated_host_bytes: v.estimatedHostBytes,
    estimated_gpu_bytes: v.estimatedGpuBytes,
    ...(v.replica === undefined ? {} : { replica: v.replica }),
  };
}

/** JobTiming as /_jobs shows it. */
function timingSummary(t: JobTiming | null): JobSummary['timing'] {
  if (!t) return null;
  return {
    download_seconds: t.download,
    build_seconds: t.build,
    upload_seconds: t.upload,
    wall_seconds: t.wall,
    copy_seconds: t.copy,
    copy_during_build_seconds: t.copyDuringBuild,
    overlap_reason: t.overlapReason ?? null,
  };
}
