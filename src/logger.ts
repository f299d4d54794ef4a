// The service's pino logger: JSON lines, credentials redacted wherever they could appear.
import { pino, type Logger } from 'pino';

import type { LogLevel } from './config.js';

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'knn-remote-index-builder' },
      redact: {
        paths: [
          'req.headers.authorization',
          'headers.authorization',
          '*.password',
          '*.secretAccessKey',
          '*.sessionToken',
          'credentials',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
