// GET /metrics: Prometheus text with jobs by status and phase, queue depth, durations, bytes and builder, fed by
// the jobs' ends (and the measurements their builds return).
import { afterEach, describe, expect, it } from 'vitest';

import { KnnClient, knnBuildBody } from '../helpers/knn-client.js';
import { type TestService, startTestService } from '../helpers/service.js';

describe('metrics', () => {
  let t: TestService;
  afterEach(async () => t.close());

  it('exposes job, queue, duration, byte and builder series', async () => {
    t = await startTestService({ MAX_WORKERS: '1' }, 0, () => 123 * 2 ** 20);
    const client = new KnnClient({ endpoint: t.url });
    const a = await client.build(knnBuildBody({ vector_path: 'p/a.knnvec' }));
    const b = await client.build(knnBuildBody({ vector_path: 'p/b.knnvec' }));
    await t.builds.started(1);

    let text = await (await fetch(`${t.url}/metrics`)).text();
    expect(text).toMatch(/^knn_queue_depth 1$/m);
    expect(text).toMatch(/^knn_jobs\{status="RUNNING_INDEX_BUILD",phase="downloading"\} 1$/m);
    expect(text).toMatch(/^knn_gpu_memory_used_bytes 128974848$/m);
    expect(text).toMatch(/^knn_queue_backend_up 1$/m);

    t.builds.complete(a, {
      fileName: 'a.faiss',
      builder: 'gpu',
      seconds: { download: 1.5, build: 2, upload: 0.5 },
      buildStages: {},
      bytesDownloaded: 1000,
      bytesUploaded: 600,
      bytesCopied: 0,
      uploadPath: { path: 'stream' },
      wallSeconds: 6,
      overlap: { copySeconds: 0, copyDuringBuildSeconds: 0 },
      peakDeviceBytes: 4096,
      format: 'IHNc/flat',
    });
    await client.poll(a);
    text = await (await fetch(`${t.url}/metrics`)).text();
    expect(text).toMatch(/^knn_jobs_finished_total\{status="COMPLETED_INDEX_BUILD"\} 1$/m);
    expect(text).toMatch(/^knn_job_phase_seconds_count\{phase="build",builder="gpu"\} 1$/m);
    expect(text).toMatch(/^knn_bytes_total\{direction="download"\} 1000$/m);
    expect(text).toMatch(/^knn_builds_total\{builder="gpu"\} 1$/m);
    expect(text).toMatch(/^knn_gpu_build_peak_bytes 4096$/m);
    expect(text).toMatch(/^knn_jobs\{status="COMPLETED_INDEX_BUILD",phase="completed"\} 1$/m);

    // A failed build: counted by its status, with no build measurements.
    await t.builds.started(2);
    t.builds.fail(b, 'disk full');
    expect((await client.poll(b)).task_status).toBe('FAILED_INDEX_BUILD');
    text = await (await fetch(`${t.url}/metrics`)).text();
    expect(text).toMatch(/^knn_jobs_finished_total\{status="FAILED_INDEX_BUILD"\} 1$/m);
    expect(text).toMatch(/^knn_builds_total\{builder="gpu"\} 1$/m);
    expect(text).toMatch(/^knn_job_seconds_count\{status="FAILED_INDEX_BUILD"\} 1$/m);
  });
});
