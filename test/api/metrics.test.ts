// GET /metrics: Prometheus text with jobs by status and phase, queue depth, durations, bytes and builder.
import { afterEach, describe, expect, it } from 'vitest';

import { ServiceMetrics } from '../../src/metrics.js';
import { KnnClient, knnBuildBody } from '../helpers/knn-client.js';
import { type TestService, startTestService } from '../helpers/service.js';

describe('metrics', () => {
  let t: TestService;
  afterEach(async () => t.close());

  it('exposes job, queue, duration, byte and builder series', async () => {
    const metrics = new ServiceMetrics(() => 123 * 2 ** 20);
    t = await startTestService({ MAX_WORKERS: '1' }, 0, [
      async (app, service) => {
        metrics.attach(service);
        await metrics.route(app);
      },
    ]);
    const client = new KnnClient({ endpoint: t.url });
    const a = await client.build(knnBuildBody({ vector_path: 'p/a.knnvec' }));
    await client.build(knnBuildBody({ vector_path: 'p/b.knnvec' }));
    await t.builds.started(1);

    let text = await (await fetch(`${t.url}/metrics`)).text();
    expect(text).toMatch(/^knn_queue_depth 1$/m);
    expect(text).toMatch(/^knn_jobs\{status="RUNNING_INDEX_BUILD",phase="downloading"\} 1$/m);
    expect(text).toMatch(/^knn_gpu_memory_used_bytes 128974848$/m);
    expect(text).toMatch(/^knn_queue_backend_up 1$/m);

    metrics.observeResult(t.builds.calls[0]!, {
      fileName: 'a.faiss',
      builder: 'gpu',
      seconds: { download: 1.5, build: 2, upload: 0.5 },
      buildStages: {},
      bytesDownloaded: 1000,
      bytesUploaded: 600,
      bytesCopied: 0,
      uploadPath: { path: 'stream' },
      peakDeviceBytes: 4096,
      format: 'IHNc/flat',
    });
    t.builds.complete(a);
    await client.poll(a);
    text = await (await fetch(`${t.url}/metrics`)).text();
    expect(text).toMatch(/^knn_jobs_finished_total\{status="COMPLETED_INDEX_BUILD"\} 1$/m);
    expect(text).toMatch(/^knn_job_phase_seconds_count\{phase="build",builder="gpu"\} 1$/m);
    expect(text).toMatch(/^knn_bytes_total\{direction="download"\} 1000$/m);
    expect(text).toMatch(/^knn_builds_total\{builder="gpu"\} 1$/m);
    expect(text).toMatch(/^knn_gpu_build_peak_bytes 4096$/m);
    expect(text).toMatch(/^knn_jobs\{status="COMPLETED_INDEX_BUILD",phase="completed"\} 1$/m);
  });
});
