// Why a build request is refused. The API maps each code to an HTTP status (see api/errors.ts).

export type JobRefusalCode = 'STORE_FULL' | 'TOO_LARGE' | 'CONFLICT' | 'DRAINING';

export class JobRefusedError extends Error {
  constructor(
    readonly code: JobRefusalCode,
    message: string,
  ) {
    super(message);
    this.name = 'JobRefusedError';
  }
}
