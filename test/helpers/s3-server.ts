// Start and stop of the S3 test server (Ceph RGW on loopback, scripts/s3-test-server.sh), for the vitest global
// set-up, benches and anything else that needs a real S3 endpoint.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { S3Client } from '@aws-sdk/client-s3';

export const S3_SERVER_SCRIPT = path.resolve(import.meta.dirname, '../../scripts/s3-test-server.sh');

export interface S3TestServer {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** SSE-KMS key ids the server knows (RGW's 'testing' KMS backend). */
  readonly kmsKeyIds: readonly string[];
  /** The server's folder when we (or the script) started it; stop it with stopS3TestServer(dir). */
  readonly dir: string | null;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /**
     * null when the run was told not to start one (S3_TEST_SERVER=none); `notStarted` when the global set-up
     * found no test file of the run that uses it.
     */
    s3TestServer: S3TestServer | null | { notStarted: string };
  }
}

const DEFAULT_ACCESS_KEY = 'knn-test-access-key';
const DEFAULT_SECRET_KEY = 'knn-test-secret-key';

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [S3_SERVER_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`s3-test-server.sh ${args[0]} exited ${code}:\n${err.trim()}`)),
    );
  });
}

/** Parses the `KEY=value` lines the script prints (with or without `export `). */
function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(?:export )?([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  return env;
}

function fromScriptEnv(env: Record<string, string>): S3TestServer {
  const endpoint = env.S3_ENDPOINT_URL;
  if (!endpoint) throw new Error('s3-test-server.sh printed no S3_ENDPOINT_URL');
  return {
    endpoint,
    region: 'us-east-1',
    accessKeyId: env.AWS_ACCESS_KEY_ID ?? DEFAULT_ACCESS_KEY,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? DEFAULT_SECRET_KEY,
    kmsKeyIds: (env.S3_TEST_KMS_KEYS ?? '').split(' ').filter(Boolean),
    dir: env.S3_TEST_DIR ?? null,
  };
}

/** Starts a fresh server (about 15 s cold). */
export async function startS3TestServer(): Promise<S3TestServer> {
  return fromScriptEnv(parseEnv(await run(['start'])));
}

export async function stopS3TestServer(dir: string): Promise<void> {
  await run(['stop', dir]);
}

/**
 * A server that is already running, named by the environment (saves the cold start while developing):
 * S3_TEST_ENDPOINT (+ S3_TEST_ACCESS_KEY / S3_TEST_SECRET_KEY, defaulting to the script's), or S3_TEST_DIR
 * (the folder `s3-test-server.sh start` printed). Undefined when neither is set.
 */
export function runningS3TestServer(env: NodeJS.ProcessEnv = process.env): S3TestServer | undefined {
  if (env.S3_TEST_ENDPOINT) {
    return {
      endpoint: env.S3_TEST_ENDPOINT,
      region: 'us-east-1',
      accessKeyId: env.S3_TEST_ACCESS_KEY ?? DEFAULT_ACCESS_KEY,
      secretAccessKey: env.S3_TEST_SECRET_KEY ?? DEFAULT_SECRET_KEY,
      kmsKeyIds: (env.S3_TEST_KMS_KEYS ?? 'knn-test-key-1 knn-test-key-2').split(' ').filter(Boolean),
      dir: null,
    };
  }
  if (env.S3_TEST_DIR) {
    const server = fromScriptEnv(parseEnv(readFileSync(path.join(env.S3_TEST_DIR, 'env'), 'utf8')));
    return { ...server, dir: null }; // not ours to stop
  }
  return undefined;
}

/** A plain SDK client for a test server (path-style, no flexible checksums: RGW 16 lacks them). */
export function s3ClientFor(server: S3TestServer, endpoint = server.endpoint): S3Client {
  return new S3Client({
    endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
