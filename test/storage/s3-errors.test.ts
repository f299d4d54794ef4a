// Which S3 failures are retried: the SDK's own rules (@smithy/service-error-classification) plus the cases they do
// not cover (s3-errors.ts says why), on errors shaped as the SDK and Node shape them.
import { describe, expect, it } from 'vitest';

import { RetriesExhausted } from '../../src/storage/retry.js';
import { AnnotatedError, TransferError, classifyS3Error } from '../../src/storage/s3-errors.js';

/** An SDK service error: a name (the S3 error code) and the HTTP status. */
function sdkError(name: string, status?: number): Error {
  const e = new Error(`${name} from the server`);
  e.name = name;
  return Object.assign(e, status === undefined ? {} : { $metadata: { httpStatusCode: status } });
}

/** A Node network error with its code. */
function netError(code: string): Error {
  return Object.assign(new Error(`connect ${code}`), { code });
}

describe('classifyS3Error', () => {
  it.each([
    ['SlowDown', 503],
    ['Throttling', 400],
    ['RequestLimitExceeded', 400],
    ['BandwidthLimitExceeded', 400],
    ['SomethingNew', 429],
  ])('%s (HTTP %s) is throttling', (name, status) => {
    expect(classifyS3Error(sdkError(name, status))).toBe('throttle');
  });

  it('an error the SDK marks throttling is throttling', () => {
    expect(classifyS3Error(Object.assign(sdkError('X', 400), { $retryable: { throttling: true } }))).toBe(
      'throttle',
    );
  });

  it.each([
    ['InternalError', 500],
    ['ServiceUnavailable', 503],
    ['NotImplemented', 501],
    ['BadGateway', 502],
    ['RequestTimeout', 400],
    // Not covered by the SDK's rules: S3 codes without a 5xx status, or a body damaged on the way.
    ['InternalError', 200],
    ['BadDigest', 400],
    ['XAmzContentSHA256Mismatch', 400],
    ['IncompleteBody', 400],
    ['TimeoutError', undefined],
  ])('%s (HTTP %s) is retried', (name, status) => {
    expect(classifyS3Error(sdkError(name, status))).toBe('retry');
  });

  it.each([
    'ECONNRESET',
    'ECONNREFUSED',
    'EPIPE',
    'ETIMEDOUT',
    'EHOSTUNREACH',
    'EAI_AGAIN',
    // Not covered by the SDK's rules.
    'ECONNABORTED',
    'ENETDOWN',
    'ERR_STREAM_PREMATURE_CLOSE',
    'UND_ERR_SOCKET',
  ])('a connection error %s is retried', (code) => {
    expect(classifyS3Error(netError(code))).toBe('retry');
  });

  it('a short or stalled body is retried', () => {
    expect(classifyS3Error(new TransferError('Timeout', 'no data for 100 ms'))).toBe('retry');
  });

  it.each([
    ['NoSuchKey', 404],
    ['NoSuchBucket', 404],
    ['AccessDenied', 403],
    ['PreconditionFailed', 412],
    ['AbortError', undefined],
  ])('%s (HTTP %s) is not retried', (name, status) => {
    expect(classifyS3Error(sdkError(name, status))).toBe('fatal');
  });

  it('a host name that does not resolve is not retried (a wrong S3_ENDPOINT_URL)', () => {
    expect(classifyS3Error(netError('ENOTFOUND'))).toBe('fatal');
  });

  it('a failure already retried is not retried again through its cause', () => {
    expect(classifyS3Error(new RetriesExhausted(netError('ECONNRESET'), 3))).toBe('fatal');
    expect(classifyS3Error(new AnnotatedError(sdkError('SlowDown', 503), 'the upload was not aborted'))).toBe(
      'fatal',
    );
  });

  it('anything that is not an error object is not retried', () => {
    expect(classifyS3Error('boom')).toBe('fatal');
    expect(classifyS3Error(undefined)).toBe('fatal');
  });
});
