// Prometheus metrics (prom-client): jobs by status and phase, queue depth, phase durations, bytes moved,
// builder used, memory reserved, and GPU memory in use when a GPU is known. Served at GET /metrics.
// One channel feeds them: the scheduler's 'finished' event (each job's end, with its build's measurements when the
// build reported them). Gauges of the service's state are read at scrape time.
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import type { JobBackend } from './jobs/backend.js';
import { type Job, JOB_PHASES } from './jobs/job.js';
import type { JobStore } from './jobs/job-store.js';
import type { GpuPool, MemoryBudget } from './jobs/resources.js';
import type { BuildOutcome, JobScheduler } from './jobs/scheduler.js';

/** What the metrics read: the parts of the service they watch. */
export interface MetricsSources {
  store: JobStore;
  scheduler: JobScheduler;
  memory: MemoryBudget;
  gpus: GpuPool;
  backend: JobBackend;
  /** GPU memory in use on device 0 (all processes), or null when unknown; absent: no such series. */
  gpuMemoryInUse?: (() => number | null) | undefined;
}

const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly finished = new Counter({
    name: 'knn_jobs_finished_total',
    help: 'Jobs that ended, by final status',
    labelNames: ['status'],
    registers: [this.registry],
  });
  private readonly phaseSeconds = new Histogram({
    name: 'knn_job_phase_seconds',
    help: 'Time a job spent downloading, building and uploading',
    labelNames: ['phase', 'builder'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly jobSeconds = new Histogram({
    name: 'knn_job_seconds',
    help: 'Time from a job being accepted to its end, by final status',
    labelNames: ['status'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly bytes = new Counter({
    name: 'knn_bytes_total',
    help: 'Bytes moved to and from the object store',
    labelNames: ['direction'],
    registers: [this.registry],
  });
  private readonly builds = new Counter({
    name: 'knn_builds_total',
    help: 'Graph builds finished, by builder (gpu or cpu)',
    labelNames: ['builder'],
    registers: [this.registry],
  });
  private readonly peakGpu = new Gauge({
    name: 'knn_gpu_build_peak_bytes',
    help: 'Peak GPU memory of the last GPU build',
    registers: [this.registry],
  });

  constructor(sources: MetricsSources) {
    collectDefaultMetrics({ register: this.registry, prefix: 'knn_process_' });
    const { store, scheduler, memory, gpus, backend, gpuMemoryInUse } = sources;
    if (gpuMemoryInUse) {
      new Gauge({
        name: 'knn_gpu_memory_used_bytes',
        help: 'GPU memory in use on device 0 (all processes)',
        registers: [this.registry],
        collect() {
          const used = gpuMemoryInUse();
          if (used !== null) this.set(used);
        },
      });
    }
    new Gauge({
      name: 'knn_jobs',
      help: 'Jobs held by the service, by status and phase',
      labelNames: ['status', 'phase'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const phase of JOB_PHASES) this.set({ status: 'RUNNING_INDEX_BUILD', phase }, 0);
        for (const j of store.all()) this.inc({ status: j.status, phase: j.phase });
      },
    });
    new Gauge({
      name: 'knn_queue_depth',
      help: 'Jobs accepted and waiting to start (for a worker or for memory)',
      registers: [this.registry],
      collect() {
        this.set(scheduler.queuedCount);
      },
    });
    new Gauge({
      name: 'knn_host_memory_reserved_bytes',
      help: 'Host memory reserved by running jobs (of CPU_MEMORY_LIMIT)',
      registers: [this.registry],
      collect() {
        this.set(memory.inUse);
      },
    });
    new Gauge({
      name: 'knn_gpus_busy',
      help: 'GPUs running a build now',
      registers: [this.registry],
      collect() {
        this.set(gpus.busy);
      },
    });
    new Gauge({
      name: 'knn_queue_backend_up',
      help: 'Whether the job backend answers: 1, or 0 while Redis is unreachable (always 1 with QUEUE_BACKEND=memory)',
      registers: [this.registry],
      async collect() {
        this.set((await backend.health()).up ? 1 : 0);
      },
    });
    scheduler.on('finished', (job, outcome) => this.finishedJob(job, outcome));
  }

  private finishedJob(job: Job, outcome: BuildOutcome | undefined): void {
    this.finished.inc({ status: job.status });
    this.jobSeconds.observe({ status: job.status }, ((job.finishedAt ?? Date.now()) - job.createdAt) / 1000);
    const r = outcome?.measurements;
    if (!r) return;
    this.phaseSeconds.observe({ phase: 'download', builder: r.builder }, r.seconds.download);
    this.phaseSeconds.observe({ phase: 'build', builder: r.builder }, r.seconds.build);
    this.phaseSeconds.observe({ phase: 'upload', builder: r.builder }, r.seconds.upload);
    this.bytes.inc({ direction: 'download' }, r.bytesDownloaded);
    this.bytes.inc({ direction: 'upload' }, r.bytesUploaded);
    this.bytes.inc({ direction: 'copy' }, r.bytesCopied);
    this.builds.inc({ builder: r.builder });
    if (r.builder === 'gpu') this.peakGpu.set(r.peakDeviceBytes);
  }

  /** GET /metrics in Prometheus's text format. */
  async route(app: FastifyInstance): Promise<void> {
    app.get(
      '/metrics',
      { schema: { summary: 'Prometheus metrics', tags: ['operations'] } },
      async (_req, reply) => {
        void reply.header('Content-Type', this.registry.contentType);
        return this.registry.metrics();
      },
    );
  }
}
