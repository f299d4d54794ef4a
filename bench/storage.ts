// Storage throughput against the S3 test server (Ceph RGW on loopback), as a ratio to the server's own ceiling
// measured in the same run:
//   download ceiling = plain parallel ranged GETs whose bodies are thrown away (no copy, no checks);
//   upload ceiling   = a plain multipart upload of in-memory parts (no stream, no checksums of ours).
// `npm run bench -- storage [--mib 1024] [--runs 2]`. Uses S3_ENDPOINT_URL + AWS_ACCESS_KEY_ID/SECRET when set,
// else starts a throw-away server with scripts/s3-test-server.sh (and stops it).
import { randomFillSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import { createObjectStore, resolveStorageSettings } from '../src/storage/index.js';
import type { StorageSettings } from '../src/storage/index.js';
import { halfFloatTransform } from '../src/vectors/fp16.js';
import { s3ClientFor, startS3TestServer, stopS3TestServer } from '../test/helpers/s3-server.js';
import type { S3TestServer } from '../test/helpers/s3-server.js';
import { printTable, writeResults } from './report.js';
import type { Row } from './report.js';

const MiB = 2 ** 20;
const { values: args } = parseArgs({
  options: { mib: { type: 'string', default: '1024' }, runs: { type: 'string', default: '2' } },
});
const totalBytes = Number(args.mib) * MiB;
const runs = Number(args.runs);

const settings: StorageSettings = resolveStorageSettings({ kind: 's3' }); // the defaults this machine gets
const BLOCK = pattern(settings.writePartBytes);
const bucket = `bench-${Date.now().toString(36)}`;
const key = 'bench/vectors.knnvec';

/** One random block repeated: the payload costs no memory beyond one part. */
function pattern(bytes: number): Buffer {
  return randomFillSync(Buffer.allocUnsafe(bytes));
}

function* payloadPieces(): Generator<Buffer> {
  for (let at = 0; at < totalBytes; at += BLOCK.length)
    yield BLOCK.subarray(0, Math.min(BLOCK.length, totalBytes - at));
}

/** Wall seconds, and CPU seconds of this process (client side only: less disturbed by other load). */
interface Timing {
  readonly seconds: number;
  readonly cpuSeconds: number;
}

async function timed(fn: () => Promise<void>): Promise<Timing> {
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  await fn();
  const cpu = process.cpuUsage(cpu0);
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** Best of `runs` (the least disturbed by the two cores the server shares with us). */
async function best(fn: () => Promise<void>): Promise<Timing> {
  let fastest: Timing = { seconds: Infinity, cpuSeconds: Infinity };
  for (let i = 0; i < runs; i++) {
    const t = await timed(fn);
    if (t.seconds < fastest.seconds) fastest = t;
  }
  return fastest;
}

async function plainUpload(client: S3Client): Promise<void> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const parts: CompletedPart[] = [];
  const numbers = Array.from({ length: Math.ceil(totalBytes / BLOCK.length) }, (_, i) => i + 1);
  try {
    await pool(numbers, settings.writeConcurrency, async (n) => {
      const body = BLOCK.subarray(0, Math.min(BLOCK.length, totalBytes - (n - 1) * BLOCK.length));
      const out = await client.send(
        new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n, Body: body }),
      );
      parts.push({ PartNumber: n, ETag: out.ETag! });
    });
    parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }));
    throw err;
  }
}

async function plainDownload(client: S3Client): Promise<void> {
  const starts = Array.from(
    { length: Math.ceil(totalBytes / settings.readPartBytes) },
    (_, i) => i * settings.readPartBytes,
  );
  await pool(starts, settings.readConcurrency, async (start) => {
    const end = Math.min(totalBytes, start + settings.readPartBytes) - 1;
    const out = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end}` }),
    );
    for await (const _piece of out.Body as Readable); // thrown away
  });
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function row(test: string, t: Timing, ceiling?: Timing): Row {
  return {
    test,
    MiB: totalBytes / MiB,
    seconds: Number(t.seconds.toFixed(2)),
    'MiB/s': Number((totalBytes / MiB / t.seconds).toFixed(1)),
    'vs ceiling': ceiling === undefined ? 1 : Number((ceiling.seconds / t.seconds).toFixed(3)),
    'client CPU s': Number(t.cpuSeconds.toFixed(2)),
  };
}

async function main(): Promise<void> {
  const external = process.env.S3_ENDPOINT_URL;
  const server: S3TestServer = external
    ? {
        endpoint: external,
        region: process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
        accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? '',
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? '',
        kmsKeyIds: [],
        dir: null,
      }
    : await startS3TestServer();
  const credentials = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
  const client = s3ClientFor(server);
  const storeSettings = {
    kind: 's3' as const,
    endpoint: server.endpoint,
    region: server.region,
    credentials,
  };
  const store = createObjectStore(storeSettings);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const where = { container: bucket, key };
    const uploadCeiling = await best(() => plainUpload(client));
    const upload = await best(async () => void (await store.write(where, Readable.from(payloadPieces()))));
    const crcStore = createObjectStore({ ...storeSettings, checksums: 'crc32' });
    const uploadCrc = await best(
      async () => void (await crcStore.write(where, Readable.from(payloadPieces()))),
    );
    await crcStore.close();
    const downloadCeiling = await best(() => plainDownload(client));
    const download = await best(async () => {
      const blob = await store.read(where);
      if (blob.byteLength !== totalBytes) throw new Error(`read ${blob.byteLength} bytes`);
    });
    const halfFloat = await best(
      async () => void (await store.read(where, { transform: halfFloatTransform })),
    );
    const rows = [
      row('upload ceiling (plain multipart, in-memory parts)', uploadCeiling),
      row('upload: store.write(stream), Content-MD5 per part', upload, uploadCeiling),
      row('upload: store.write(stream), CRC32 per part + object', uploadCrc, uploadCeiling),
      row('download ceiling (plain ranged GETs, bodies dropped)', downloadCeiling),
      row('download: store.read into HostBlob', download, downloadCeiling),
      row('download: store.read, fp32 -> fp16 transform', halfFloat, downloadCeiling),
    ];
    printTable(
      `storage throughput, ${totalBytes / MiB} MiB, best of ${runs} (parts ${settings.readPartBytes / MiB} MiB x ` +
        `${settings.readConcurrency} GETs / ${settings.writePartBytes / MiB} MiB x ${settings.writeConcurrency} PUTs)`,
      rows,
    );
    writeResults('storage', { server: external ? 'external' : 'ceph rgw 16 on loopback', settings, rows });
  } finally {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => {});
    await store.close();
    client.destroy();
    if (server.dir) await stopS3TestServer(server.dir);
  }
}

await main();
