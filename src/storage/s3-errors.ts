// What an S3 failure means: retry it or not (classifyS3Error), and the StorageError a person reads (toStorageError).
import { isServerError, isThrottlingError, isTransientError } from '@smithy/service-error-classification';

import { StorageError } from './errors.js';
import type { StorageErrorCode } from './errors.js';
import { RetriesExhausted } from './retry.js';
import type { RetryKind } from './retry.js';
import type { ObjectLocation } from './types.js';

/** A transfer that went wrong in a way worth another attempt: short or long body, wrong length, stalled. */
export class TransferError extends Error {
  override readonly name = 'TransferError';
  constructor(
    readonly code: 'Corrupt' | 'Timeout' | 'Unreachable',
    message: string,
  ) {
    super(message);
  }
}

/** A failure plus something the person reading it must know too (e.g. an upload that could not be aborted). */
export class AnnotatedError extends Error {
  override readonly name = 'AnnotatedError';
  constructor(
    readonly original: unknown,
    readonly note: string,
  ) {
    super(note, { cause: original });
  }
}

// Throttling, timeouts, 5xx and most connection errors are classified by the AWS SDK's own rules
// (@smithy/service-error-classification, as the SDK's retry strategy uses them). It does not cover these, which we
// retry too:
// - S3 error codes that can come without a 5xx status (S3 may answer CompleteMultipartUpload and UploadPartCopy
//   with 200 and an InternalError body) or with a 400 for a body damaged on the way: worth sending again.
const TRANSIENT_SERVICE = new Set([
  'InternalError',
  'ServiceUnavailable',
  'BadDigest',
  'XAmzContentSHA256Mismatch',
  'IncompleteBody',
]);

// - Connection errors the SDK does not list (ECONNABORTED, ENETDOWN, a body cut short, undici's socket error).
//   The whole list is also what a person reads as "cannot talk to the endpoint".
const CONNECTION_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

interface ErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

type SdkError = Parameters<typeof isTransientError>[0];

export function shape(err: unknown): ErrorShape {
  return typeof err === 'object' && err !== null ? (err as ErrorShape) : {};
}

export function httpStatus(err: unknown): number | undefined {
  return shape(err).$metadata?.httpStatusCode;
}

function isConnectionError(err: unknown): boolean {
  const { code, name } = shape(err);
  return (code !== undefined && CONNECTION_CODES.has(code)) || name === 'TimeoutError';
}

export function classifyS3Error(err: unknown): RetryKind {
  if (err instanceof TransferError) return 'retry';
  const { name = '', code, message = '', $metadata, $retryable } = shape(err);
  // A name that does not resolve is a wrong S3_ENDPOINT_URL (the SDK retries it): fail at once, saying so.
  if (code === 'ENOTFOUND') return 'fatal';
  // The error itself, without its cause: our wrappers (RetriesExhausted, AnnotatedError) carry a failure that was
  // already retried, and the SDK's rules would retry it again through the cause.
  const own = Object.assign(new Error(message), { name, code, $metadata, $retryable }) as SdkError;
  if (isThrottlingError(own)) return 'throttle';
  if (isTransientError(own) || isServerError(own)) return 'retry';
  if (TRANSIENT_SERVICE.has(name) || isConnectionError(err)) return 'retry';
  return 'fatal';
}

export interface ErrorContext {
  /** What we were doing, for the message: 'reading', 'writing', 'checking'. */
  readonly action: string;
  readonly address: string;
  readonly location: ObjectLocation;
  /** The endpoint (credentials removed) for unreachable-server messages. */
  readonly endpoint: string;
  readonly signal?: AbortSignal | undefined;
}

/** Maps any failure to a StorageError whose message names the object and says what to do. */
export function toStorageError(err: unknown, ctx: ErrorContext): StorageError {
  if (err instanceof AnnotatedError) {
    const inner = toStorageError(err.original, ctx);
    return new StorageError(inner.code, `${inner.message} (${err.note})`, {
      location: ctx.location,
      cause: inner.cause,
    });
  }
  if (err instanceof StorageError) return err;
  const options = { location: ctx.location, cause: plainCause(err) };
  if (ctx.signal?.aborted) {
    return new StorageError('Aborted', `${ctx.action} ${ctx.address} was cancelled`, options);
  }
  const attempts = err instanceof RetriesExhausted ? err.attempts : 1;
  const last = err instanceof RetriesExhausted ? err.last : err;
  const after = attempts > 1 ? ` (after ${attempts} attempts)` : '';
  const [code, reason] = describe(last, ctx);
  return new StorageError(code, `${ctx.action} ${ctx.address} failed: ${reason}${after}`, options);
}

/**
 * The cause to keep: SDK errors carry the raw HTTP exchange ($response: request headers with the Authorization
 * header, sockets), which must never reach a log. Keep name, message, code, status and request id only.
 */
function plainCause(err: unknown): Error {
  const last = err instanceof RetriesExhausted ? err.last : err;
  const { name = 'Error', code, message = String(last) } = shape(last);
  const requestId = (last as { $metadata?: { requestId?: string } } | undefined)?.$metadata?.requestId;
  const cause = new Error(message);
  cause.name = name;
  if (last instanceof Error && last.stack) cause.stack = last.stack;
  return Object.assign(cause, { code, httpStatusCode: httpStatus(last), requestId });
}

function describe(err: unknown, ctx: ErrorContext): [StorageErrorCode, string] {
  const { name = 'Error', code, message = String(err) } = shape(err);
  const status = httpStatus(err);
  const bucket = ctx.location.container;
  if (err instanceof TransferError) return [err.code, err.message];
  const denied = (why: string): [StorageErrorCode, string] => [
    'AccessDenied',
    `access denied (${why}); the service's credentials need read and write access to bucket '${bucket}'` +
      ' (and use of its KMS key, if any)',
  ];
  switch (name) {
    case 'NoSuchBucket':
      return ['NoSuchBucket', `bucket '${bucket}' does not exist (NoSuchBucket); check container_name`];
    case 'NoSuchKey':
      return ['NoSuchKey', `no such object (NoSuchKey); check the path and that the upload finished`];
    case 'AccessDenied':
    case 'AllAccessDisabled':
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'ExpiredToken':
    case 'InvalidToken':
    case 'KMS.AccessDeniedException':
      return denied(name);
    case 'PreconditionFailed':
      return ['Changed', 'the object was replaced while it was being read (PreconditionFailed); try again'];
  }
  if (status === 403) return denied('HTTP 403'); // HEAD answers carry no error code
  if (classifyS3Error(err) === 'throttle') {
    return ['Throttled', `the server kept asking to slow down (${name}); lower S3_CONCURRENCY or try later`];
  }
  if (status !== undefined && status >= 500) {
    return ['ServerError', `the server failed (HTTP ${status} ${name}: ${message})`];
  }
  if (name === 'TimeoutError' || code === 'ETIMEDOUT') {
    return ['Timeout', `${ctx.endpoint} sent no data within the idle timeout (${message})`];
  }
  if (isConnectionError(err) || code === 'ENOTFOUND') {
    return [
      'Unreachable',
      `cannot talk to ${ctx.endpoint} (${code ?? name}: ${message}); check S3_ENDPOINT_URL`,
    ];
  }
  return ['Failed', `${name}${status ? ` (HTTP ${status})` : ''}: ${message}`];
}
