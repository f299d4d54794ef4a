// POST /_build: validate, admit (or find the existing job), answer {"job_id"}.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TObject } from '@sinclair/typebox';

import { clampHnswParameters } from '../builders/hnsw-params.js';
import type { JobBackend } from '../jobs/backend.js';
import {
  AlgorithmParameters,
  BuildRequest,
  BuildResponse,
  ErrorResponse,
  IndexParameters,
  ValidationErrorResponse,
} from './schemas.js';
import { RequestValidationError, coerceIntegerStrings, crossFieldErrors } from './validation.js';

export const buildRoutes: FastifyPluginAsyncTypebox<{ backend: JobBackend }> = async (app, { backend }) => {
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
      const unknown = newUnknownKeys(request.body);
      if (unknown.length > 0) request.log.debug({ keys: unknown }, 'build request keys ignored (not used)');
      const { request: known, changes } = knownRequest(request.body);
      if (changes.length > 0) request.log.info({ changes }, 'HNSW parameters clamped for the builders');
      const { id, started } = await backend.submit(known);
      request.log.info(
        { jobId: id, started, vectorPath: request.body.vector_path },
        started ? 'build accepted' : 'build already known',
      );
      return { job_id: id };
    },
  );
};

/**
 * The request with only the keys the schema knows (unknown ones are accepted and ignored, so they go no
 * further: not into the job, its idempotency check or /_jobs) and the HNSW parameters the builders will use.
 */
export function knownRequest(r: BuildRequest): { request: BuildRequest; changes: string[] } {
  const { params, changes } = clampHnswParameters(r.index_parameters.algorithm_parameters);
  const known = pick(r, Object.keys(BuildRequest.properties)) as BuildRequest;
  return {
    request: {
      ...known,
      index_parameters: {
        ...(pick(
          r.index_parameters,
          Object.keys(IndexParameters.properties),
        ) as BuildRequest['index_parameters']),
        algorithm_parameters: params,
      },
    },
    changes,
  };
}

function pick(o: object, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => keys.includes(k)));
}

// Each unknown key path is logged once per process: k-NN sends the same body shape for every segment.
const seenUnknownKeys = new Set<string>();

function newUnknownKeys(r: BuildRequest): string[] {
  const levels: [string, object, TObject][] = [
    ['', r, BuildRequest],
    ['index_parameters.', r.index_parameters, IndexParameters],
    ['index_parameters.algorithm_parameters.', r.index_parameters.algorithm_parameters, AlgorithmParameters],
  ];
  const found: string[] = [];
  for (const [prefix, value, schema] of levels) {
    for (const key of Object.keys(value)) {
      const path = prefix + key;
      if (key in schema.properties || seenUnknownKeys.has(path)) continue;
      if (seenUnknownKeys.size < 1000) seenUnknownKeys.add(path);
      found.push(path);
    }
  }
  return found;
}
