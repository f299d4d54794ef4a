// A strict model of OpenSearch k-NN's remote-build client (RemoteIndexHTTPClient, RemoteBuildStatusResponse,
// RemoteIndexPoller): what it sends, what it accepts, and its retry rules. Anything it would reject throws here.
import { setTimeout as sleep } from 'node:timers/promises';

export const KNN_STATUSES = ['RUNNING_INDEX_BUILD', 'COMPLETED_INDEX_BUILD', 'FAILED_INDEX_BUILD'] as const;
export type KnnStatus = (typeof KNN_STATUSES)[number];

/** k-NN retries once (two attempts in all) on these statuses, waiting Retry-After seconds or 1 s. */
const RETRYABLE = new Set([408, 409, 429, 500, 502, 503, 509]);
const STATUS_FIELDS = new Set(['task_status', 'file_name', 'error_message']);

export class KnnClientError extends Error {
  constructor(
    message: string,
    readonly httpStatus?: number,
    readonly body?: string,
  ) {
    super(message);
    this.name = 'KnnClientError';
  }
}

export interface KnnStatusResponse {
  task_status: KnnStatus;
  file_name: string | null;
  error_message: string | null;
}

export interface KnnClientOptions {
  /** The service; several (replicas): each request goes to the next one, round robin, as behind a balancer. */
  endpoint: string | readonly string[];
  username?: string;
  password?: string;
  /** Cap on the Retry-After wait (tests keep it short). */
  maxRetryWaitMs?: number;
}

export class KnnClient {
  /** Every HTTP attempt made, for tests of the retry rules. */
  readonly attempts: { method: string; path: string; status: number; endpoint: string }[] = [];
  private turn = 0;

  constructor(private readonly o: KnnClientOptions) {}

  private nextEndpoint(): string {
    const all = typeof this.o.endpoint === 'string' ? [this.o.endpoint] : this.o.endpoint;
    return all[this.turn++ % all.length]!;
  }

  /** POST /_build; returns the job id or throws as k-NN would (then falling back to CPU). */
  async build(body: unknown): Promise<string> {
    const res = await this.send('POST', '/_build', JSON.stringify(body));
    const parsed = parseObject(res.text);
    const keys = Object.keys(parsed);
    if (
      keys.length !== 1 ||
      keys[0] !== 'job_id' ||
      typeof parsed.job_id !== 'string' ||
      parsed.job_id.trim() === ''
    ) {
      throw new KnnClientError(`Invalid build response: ${res.text}`, res.status, res.text);
    }
    return parsed.job_id;
  }

  /** GET /_status/{id}; validates the body exactly as k-NN's parser does. */
  async status(jobId: string): Promise<KnnStatusResponse> {
    const res = await this.send('GET', `/_status/${jobId}`);
    const parsed = parseObject(res.text);
    for (const [k, v] of Object.entries(parsed)) {
      if (!STATUS_FIELDS.has(k) && v !== null) {
        throw new KnnClientError(`Invalid response format, unknown field: ${k}`, res.status, res.text);
      }
    }
    const status = parsed.task_status;
    if (typeof status !== 'string' || !(KNN_STATUSES as readonly string[]).includes(status)) {
      throw new KnnClientError(`Invalid task_status: ${String(status)}`, res.status, res.text);
    }
    const fileName = parsed.file_name ?? null;
    const errorMessage = parsed.error_message ?? null;
    if (fileName !== null && typeof fileName !== 'string') throw new KnnClientError('file_name not a string');
    if (errorMessage !== null && typeof errorMessage !== 'string')
      throw new KnnClientError('error_message not a string');
    if (status === 'COMPLETED_INDEX_BUILD' && (fileName === null || fileName.trim() === '')) {
      throw new KnnClientError('COMPLETED_INDEX_BUILD without file_name', res.status, res.text);
    }
    return { task_status: status as KnnStatus, file_name: fileName, error_message: errorMessage };
  }

  /** Polls like RemoteIndexPoller until the job completes or fails; any failed call ends the remote build. */
  async poll(jobId: string, { intervalMs = 0, timeoutMs = 60_000 } = {}): Promise<KnnStatusResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status(jobId);
      if (s.task_status !== 'RUNNING_INDEX_BUILD') return s;
      if (Date.now() > deadline) throw new KnnClientError(`timed out polling ${jobId}`);
      await sleep(intervalMs);
    }
  }

  private async send(method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = {};
      if (body !== undefined) headers['Content-Type'] = 'application/json; charset=UTF-8';
      if (this.o.username !== undefined) {
        headers.Authorization = `Basic ${Buffer.from(`${this.o.username}:${this.o.password ?? ''}`).toString('base64')}`;
      }
      const endpoint = this.nextEndpoint();
      const res = await fetch(endpoint + path, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
      });
      const text = await res.text();
      this.attempts.push({ method, path, status: res.status, endpoint });
      if (res.status >= 200 && res.status < 300) return { status: res.status, text };
      if (attempt === 1 && RETRYABLE.has(res.status)) {
        const retryAfter = Number(res.headers.get('retry-after'));
        const waitMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 1000;
        await sleep(Math.min(waitMs, this.o.maxRetryWaitMs ?? waitMs));
        continue;
      }
      throw new KnnClientError(`${method} ${path} failed with HTTP ${res.status}: ${text}`, res.status, text);
    }
  }
}

function parseObject(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new KnnClientError(`response is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new KnnClientError('response is not an object');
  return v as Record<string, unknown>;
}

/** A build body exactly as k-NN sends it (field order included), with overrides. */
export function knnBuildBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    repository_type: 's3',
    container_name: 'my-bucket',
    vector_path: 'base/ixUUID_vectors/Q2F0_my_field__3l.knnvec',
    doc_id_path: 'base/ixUUID_vectors/Q2F0_my_field__3l.knndid',
    tenant_id: 'my-cluster',
    dimension: 768,
    doc_count: 1000,
    data_type: 'float',
    engine: 'faiss',
    index_parameters: hnswIndexParameters('l2'),
    skip_stored_vectors: false,
    ...overrides,
  };
}

/** k-NN's index_parameters for a Faiss HNSW field with the default ef_construction, ef_search and m. */
export function hnswIndexParameters(spaceType: string): Record<string, unknown> {
  return {
    space_type: spaceType,
    algorithm: 'hnsw',
    algorithm_parameters: { ef_construction: 100, ef_search: 100, m: 16 },
  };
}
