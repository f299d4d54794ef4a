// How every failure is answered over HTTP: one place, so routes only throw.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';

import { BackendUnavailableError } from '../jobs/backend.js';
import { JobRefusedError, type JobRefusalCode } from '../jobs/errors.js';
import { RequestValidationError, toFieldErrors } from './validation.js';

const REFUSAL_STATUS: Record<JobRefusalCode, number> = {
  STORE_FULL: 507,
  TOO_LARGE: 507,
  CONFLICT: 409,
  DRAINING: 503,
};

/** Seconds a client should wait before retrying while the service drains (k-NN honours Retry-After). */
export const DRAINING_RETRY_AFTER_SECONDS = 10;

/** Seconds a client should wait before retrying while the job backend (Redis) is unreachable. */
export const BACKEND_RETRY_AFTER_SECONDS = 1;

export class NotFoundError extends Error {
  constructor(message = 'Job not found') {
    super(message);
    this.name = 'NotFoundError';
  }
}

export function errorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  if (error instanceof RequestValidationError) {
    void reply.code(422).send({ detail: 'Validation Error', errors: error.errors });
    return;
  }
  const fe = error as FastifyError;
  if (fe.validation) {
    const errors = toFieldErrors(fe.validationContext ?? 'body', fe.validation);
    void reply.code(422).send({ detail: 'Validation Error', errors });
    return;
  }
  if (error instanceof NotFoundError) {
    void reply.code(404).send({ detail: error.message });
    return;
  }
  if (error instanceof JobRefusedError) {
    const status = REFUSAL_STATUS[error.code];
    if (error.code === 'DRAINING') void reply.header('Retry-After', String(DRAINING_RETRY_AFTER_SECONDS));
    request.log.warn({ code: error.code, status }, error.message);
    void reply.code(status).send({ detail: error.message });
    return;
  }
  if (error instanceof BackendUnavailableError) {
    request.log.warn({ status: 503 }, error.message);
    void reply
      .header('Retry-After', String(BACKEND_RETRY_AFTER_SECONDS))
      .code(503)
      .send({ detail: error.message });
    return;
  }
  // Fastify's own client errors (bad JSON 400, body too large 413, wrong media type 415, ...).
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    void reply.code(fe.statusCode).send({ detail: fe.message });
    return;
  }
  request.log.error({ err: error }, 'unhandled error');
  void reply.code(500).send({ detail: 'Internal Server Error' });
}
