// Helpers for tests that use the S3 test server: a plain SDK client for it, buckets, objects, and store settings.
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import type { StorageSettings } from '../../src/storage/settings.js';
import { type S3TestServer, s3ClientFor } from './s3-server.js';

/** Why S3 tests are skipped (S3_TEST_SERVER=none), else undefined: use with describe.skipIf / it.skipIf. */
export function s3Unavailable(): string | undefined {
  return inject('s3TestServer') === null ? 'no S3 test server in this run (S3_TEST_SERVER=none)' : undefined;
}

export function s3TestServer(): S3TestServer {
  const server = inject('s3TestServer');
  if (server === null) throw new Error(s3Unavailable());
  if ('notStarted' in server) {
    throw new Error(
      `the S3 test server was not started (${server.notStarted}): import test/helpers/s3.ts from the test ` +
        'file or one of its relative imports, or run with S3_TEST_SERVER=always',
    );
  }
  return server;
}

/** A plain SDK client for the test server (path-style, no flexible checksums: RGW 16 lacks them). */
export function testS3Client(server: S3TestServer = s3TestServer(), endpoint = server.endpoint): S3Client {
  return s3ClientFor(server, endpoint);
}

/** Store settings for the test server (or a proxy in front of it at `endpoint`). */
export function s3StoreSettings(
  overrides: Partial<StorageSettings> = {},
  server: S3TestServer = s3TestServer(),
): Partial<StorageSettings> {
  return {
    kind: 's3',
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    checksums: 'md5',
    retryBaseDelayMs: 10,
    ...overrides,
  };
}

/** Creates a bucket with a unique name (RGW rules: lower case, 3-63 chars). */
export async function createTestBucket(client: S3Client, prefix = 'test'): Promise<string> {
  const name = `${prefix}-${randomBytes(5).toString('hex')}`.toLowerCase().slice(0, 63);
  await client.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/** Deletes every object and multipart upload in the bucket, then the bucket. */
export async function deleteTestBucket(client: S3Client, bucket: string): Promise<void> {
  for (const upload of await listMultipartUploads(client, bucket)) {
    await client.send(
      new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.uploadId }),
    );
  }
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    // One DeleteObject each: DeleteObjects needs Content-MD5, which RGW 16 insists on and the SDK no longer sends.
    for (const object of page.Contents ?? []) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.Key! }));
    }
    token = page.NextContinuationToken;
  } while (token);
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

export async function putObject(
  client: S3Client,
  bucket: string,
  key: string,
  data: Uint8Array,
): Promise<void> {
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ContentLength: data.length }),
  );
}

export async function getObject(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

export async function listObjectKeys(client: S3Client, bucket: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

export async function listMultipartUploads(
  client: S3Client,
  bucket: string,
): Promise<{ key: string; uploadId: string }[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (out.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
}
