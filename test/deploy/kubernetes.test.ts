// deploy/kubernetes/ checked without a cluster: every manifest parses, validates against the Kubernetes API schemas
// (kubernetes-models: types, formats, required fields, enums) and names no field the API does not have (TypeScript's
// excess-property check against the same models' types); each variant (gpu, cpu, scale-out) is what its
// kustomization lists, and its properties agree with the service: probe paths and ports, the Service's target,
// Prometheus scraping, the grace period, the memory request against CPU_MEMORY_LIMIT, env names in README's settings
// table, the Secret's keys.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import type { IIoK8sApiCoreV1Container as Container } from 'kubernetes-models/v1/Container';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IService } from 'kubernetes-models/v1/Service';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

import { loadSettings } from '../../src/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DIR = path.join(ROOT, 'deploy/kubernetes');
const VARIANTS = ['gpu', 'cpu', 'scale-out'] as const;
/** Applied on their own (README): the Secret (never by kustomize) and the Prometheus Operator's ServiceMonitor. */
const STANDALONE = ['secret.yaml', 'monitoring/servicemonitor.yaml'];
const GIB = 2 ** 30;

interface Doc {
  file: string;
  obj: { apiVersion?: string; kind?: string; metadata?: { name?: string } } & Record<string, unknown>;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(name) ? [path.relative(DIR, full)] : [];
  });
}

function parseFile(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8'), { prettyErrors: true });
  return docs.map((d) => {
    expect([...d.errors, ...d.warnings].map(String), file).toEqual([]);
    return { file, obj: d.toJS() as Doc['obj'] };
  });
}

const files = yamlFiles(DIR);
const parsed = new Map(files.map((f) => [f, parseFile(f)]));
const isKustomization = (f: string) => path.basename(f) === 'kustomization.yaml';
const manifests = [...parsed.entries()].filter(([f]) => !isKustomization(f)).flatMap(([, docs]) => docs);

/** The Kubernetes objects a kustomization directory lists, following directories (no transformers are used). */
function render(dir: string): Doc[] {
  const k = parsed.get(path.join(dir, 'kustomization.yaml'))?.[0]?.obj as
    { resources?: string[] } | undefined;
  expect(k, `${dir}/kustomization.yaml`).toBeDefined();
  return (k!.resources ?? []).flatMap((r) => {
    const target = path.normalize(path.join(dir, r));
    return parsed.has(target) ? parsed.get(target)! : render(target);
  });
}

// --- schemas: a model class per apiVersion/kind, and the module whose interface types the object
const MODELS: Record<string, { module: string; type: string }> = {
  'apps/v1/Deployment': { module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  'apps/v1/StatefulSet': { module: 'kubernetes-models/apps/v1/StatefulSet', type: 'IStatefulSet' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', type: 'IService' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', type: 'ISecret' },
  'policy/v1/PodDisruptionBudget': {
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    type: 'IPodDisruptionBudget',
  },
  'networking.k8s.io/v1/NetworkPolicy': {
    module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
    type: 'INetworkPolicy',
  },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
    type: 'IServiceMonitor',
  },
};
const modelKey = (d: Doc) => `${d.obj.apiVersion}/${d.obj.kind}`;

/** TypeScript diagnostics of `const m: IKind = <object>` for each manifest: unknown fields are excess properties. */
function unknownFieldErrors(docs: Doc[]): string[] {
  const virtual = path.join(ROOT, 'test/deploy/manifests.generated.ts');
  const source = docs
    .map((d, i) => {
      const m = MODELS[modelKey(d)]!;
      return `import type { ${m.type} as T${i} } from '${m.module}';\nexport const m${i}: T${i} = ${JSON.stringify(d.obj)};`;
    })
    .join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (f) => (f === virtual ? source : readFile(f));
  host.fileExists = (f) => f === virtual || ts.sys.fileExists(f);
  host.getSourceFile = (f, v, ...rest) =>
    f === virtual ? ts.createSourceFile(f, source, v) : getSourceFile(f, v, ...rest);
  const program = ts.createProgram([virtual], options, host);
  return ts.getPreEmitDiagnostics(program).map((diag) => {
    const line =
      diag.file && diag.start !== undefined ? diag.file.getLineAndCharacterOfPosition(diag.start).line : -1;
    const doc = line >= 0 ? docs[Math.floor(line / 2)] : undefined;
    const where = doc ? `${doc.file} ${doc.obj.kind}/${doc.obj.metadata?.name}` : '?';
    return `${where}: ${ts.flattenDiagnosticMessageText(diag.messageText, '\n')}`;
  });
}

// --- helpers over the objects
type Probe = NonNullable<Container['readinessProbe']>;

function builderOf(docs: Doc[]): { deployment: IDeployment; container: Container } {
  const deployments = docs.filter((d) => d.obj.kind === 'Deployment');
  expect(deployments).toHaveLength(1);
  const deployment = deployments[0]!.obj as unknown as IDeployment;
  const containers = deployment.spec!.template.spec!.containers;
  expect(containers).toHaveLength(1);
  return { deployment, container: containers[0]! };
}

/** The settings the container's literal env values give (secret-backed values are left out). */
function envOf(c: Container): Record<string, string> {
  return Object.fromEntries(
    (c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
  );
}

function quantityBytes(q: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  expect(m, `memory quantity ${q}`).not.toBeNull();
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m![1]) * (m![2] ? unit[m![2] as keyof typeof unit] : 1);
}

/** A probe's or Service's port (a number or a container port's name) as the container port number. */
function resolvePort(c: Container, port: string | number | undefined): number | undefined {
  return typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort;
}

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The names README's settings table documents (every backticked upper-case name in its first column). */
function settingsTableNames(): Set<string> {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(
    readme.indexOf('\n## Settings'),
    readme.indexOf('\n## ', readme.indexOf('\n## Settings') + 1),
  );
  const names = new Set<string>();
  for (const line of section.split('\n').filter((l) => l.startsWith('| `'))) {
    for (const m of line.split('|')[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(m[1]!);
  }
  return names;
}

describe('deploy/kubernetes manifests', () => {
  it('parse as YAML, and every manifest is in a variant or applied on its own', () => {
    expect(manifests.length).toBeGreaterThan(0);
    const reached = new Set(VARIANTS.flatMap((v) => render(v)).map((d) => d.file));
    for (const f of files.filter((f) => !isKustomization(f))) {
      expect(reached.has(f) || STANDALONE.includes(f), `${f} is in no kustomization`).toBe(true);
    }
    for (const f of files.filter(isKustomization)) {
      expect(parsed.get(f)![0]!.obj).toMatchObject({
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
      });
    }
  });

  it('validate against the Kubernetes API schemas (kubernetes-models)', async () => {
    for (const d of manifests) {
      const m = MODELS[modelKey(d)];
      expect(m, `${d.file}: no schema known for ${modelKey(d)}`).toBeDefined();
      const mod = (await import(m!.module)) as Record<string, new (data: unknown) => { validate(): void }>;
      const Model = mod[m!.type.slice(1)]!;
      expect(
        () => new Model(d.obj).validate(),
        `${d.file} ${d.obj.kind}/${d.obj.metadata?.name}`,
      ).not.toThrow();
    }
  });

  it('the schema check catches a wrong type (control)', async () => {
    const { Deployment } = await import('kubernetes-models/apps/v1/Deployment');
    const bad = structuredClone(
      render('gpu').find((d) => d.obj.kind === 'Deployment')!.obj,
    ) as unknown as IDeployment;
    bad.spec!.template.spec!.containers[0]!.ports![0]!.containerPort = 'http' as unknown as number;
    expect(() => new Deployment(bad).validate()).toThrow(/containerPort must be integer/);
  });

  it('name no field the Kubernetes API lacks (and the check catches a misspelt one)', () => {
    expect(unknownFieldErrors(manifests)).toEqual([]);
    const typo = structuredClone(render('gpu').find((d) => d.obj.kind === 'Deployment')!);
    const container: unknown = (typo.obj as unknown as IDeployment).spec!.template.spec!.containers[0];
    const c = container as Record<string, unknown>;
    c.readinesProbe = c.readinessProbe;
    const errors = unknownFieldErrors([typo]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/readinesProbe\W+ does not exist in type 'IContainer'/);
  }, 60_000);
});

describe.each(VARIANTS)('deploy/kubernetes/%s', (variant) => {
  const docs = render(variant);
  const { deployment, container } = builderOf(docs);
  const env = envOf(container);
  const settings = loadSettings({ ...env, BASIC_AUTH_USERNAME: 'u', BASIC_AUTH_PASSWORD: 'p' });
  const podSpec = deployment.spec!.template.spec!;
  const podLabels = deployment.spec!.template.metadata!.labels!;

  it("has valid settings, every env name in README's settings table, credentials from the Secret", () => {
    expect(() => loadSettings(env)).not.toThrow();
    const table = settingsTableNames();
    const names = (container.env ?? []).map((e) => e.name);
    expect(names.filter((n) => !table.has(n))).toEqual([]);
    const secret = parseFile('secret.yaml')[0]!.obj as { metadata: { name: string }; stringData: object };
    const fromSecret = (container.env ?? []).filter((e) => e.valueFrom?.secretKeyRef);
    expect(fromSecret.map((e) => e.name).sort()).toEqual(
      ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'BASIC_AUTH_PASSWORD', 'BASIC_AUTH_USERNAME'].sort(),
    );
    for (const e of fromSecret) {
      expect(e.valueFrom!.secretKeyRef!.name).toBe(secret.metadata.name);
      expect(Object.keys(secret.stringData)).toContain(e.valueFrom!.secretKeyRef!.key);
    }
    expect(Object.keys(secret.stringData).sort()).toEqual(fromSecret.map((e) => e.name).sort());
  });

  it('probes /_heart_beat on the port the service listens on (PORT)', () => {
    const http = container.ports!.find((p) => p.name === 'http')!;
    expect(http.containerPort).toBe(settings.port);
    const probes: [string, Probe | undefined][] = [
      ['readiness', container.readinessProbe],
      ['liveness', container.livenessProbe],
      ['startup', container.startupProbe],
    ];
    for (const [name, probe] of probes) {
      expect(probe?.httpGet?.path, name).toBe('/_heart_beat');
      expect(resolvePort(container, probe!.httpGet!.port), name).toBe(settings.port);
    }
  });

  it('has a Service and a PodDisruptionBudget that select the builder pods (and only them)', () => {
    const service = docs.find((d) => d.obj.kind === 'Service' && d.obj.metadata?.name === 'knn-builder')!
      .obj as unknown as IService;
    const selector = service.spec!.selector!;
    expect(matches(selector, podLabels)).toBe(true);
    expect(matches(deployment.spec!.selector.matchLabels!, podLabels)).toBe(true);
    for (const other of docs.filter((d) => d.obj.kind === 'StatefulSet')) {
      const labels = (other.obj as { spec: { template: { metadata: { labels: Record<string, string> } } } })
        .spec.template.metadata.labels;
      expect(matches(selector, labels), `the Service selects ${other.obj.metadata?.name}`).toBe(false);
    }
    expect(service.spec!.ports!.map((p) => resolvePort(container, p.targetPort))).toEqual([settings.port]);
    const pdb = docs.find((d) => d.obj.kind === 'PodDisruptionBudget')!.obj as {
      spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } };
    };
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);
    expect(pdb.spec.maxUnavailable).toBe(1);
  });

  it('lets Prometheus scrape /metrics (pod annotations, and the ServiceMonitor through the Service)', () => {
    const annotations = deployment.spec!.template.metadata!.annotations!;
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(annotations['prometheus.io/path']).toBe('/metrics');
    expect(Number(annotations['prometheus.io/port'])).toBe(settings.port);
    const monitor = parseFile('monitoring/servicemonitor.yaml')[0]!.obj as {
      spec: {
        selector: { matchLabels: Record<string, string> };
        endpoints: { port: string; path: string }[];
      };
    };
    const service = docs.find((d) => d.obj.kind === 'Service' && d.obj.metadata?.name === 'knn-builder')!
      .obj as unknown as IService;
    expect(matches(monitor.spec.selector.matchLabels, service.metadata!.labels)).toBe(true);
    for (const e of monitor.spec.endpoints) {
      expect(e.path).toBe('/metrics');
      expect(service.spec!.ports!.map((p) => p.name)).toContain(e.port);
    }
  });

  it('waits longer than SHUTDOWN_GRACE_SECONDS plus the status linger before SIGKILL', () => {
    // The status linger (issue 14) is read from the settings when they have it; 30 s until then.
    const linger = Object.entries(settings).find(([k, v]) => /linger/i.test(k) && typeof v === 'number')?.[1];
    const lingerSeconds = typeof linger === 'number' ? linger : 30;
    expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThan(
      settings.shutdownGraceSeconds + lingerSeconds,
    );
  });

  it('requests the memory CPU_MEMORY_LIMIT promises the jobs, plus room for the service itself', () => {
    const { requests, limits } = container.resources!;
    expect(quantityBytes(requests!.memory!)).toBe(quantityBytes(limits!.memory!));
    const headroom = quantityBytes(requests!.memory!) - settings.cpuMemoryLimitBytes;
    expect(headroom).toBeGreaterThanOrEqual(2 * GIB);
    expect(headroom).toBeLessThanOrEqual(8 * GIB);
    // The CPU builder's threads are the cores the pod asked for, not the node's.
    expect(settings.buildThreads).toBe(Number(requests!.cpu));
  });

  it("runs as the image's unprivileged user on a read-only root file system with /tmp writable", () => {
    expect(podSpec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.volumeMounts!.map((v) => v.mountPath)).toContain('/tmp');
    expect(container.image).toMatch(/\/knn-remote-index-builder:[\w.-]+$/);
  });

  it('has its builder: a GPU, the CPU, or GPUs sharing Redis', () => {
    const gpus = container.resources!.limits?.['nvidia.com/gpu'];
    if (variant === 'cpu') {
      expect(gpus).toBeUndefined();
      expect(settings.builder).toBe('cpu');
      expect(deployment.spec!.replicas).toBe(1);
      return;
    }
    expect(gpus).toBe(1);
    expect(podSpec.tolerations).toContainEqual(
      expect.objectContaining({ key: 'nvidia.com/gpu', operator: 'Exists' }),
    );
    if (variant === 'gpu') {
      expect(deployment.spec!.replicas).toBe(1);
      expect(env.QUEUE_BACKEND ?? 'memory').toBe('memory');
      return;
    }
    expect(deployment.spec!.replicas).toBeGreaterThan(1);
    expect(env.QUEUE_BACKEND).toBe('redis');
    const url = new URL(env.REDIS_URL!);
    const redis = docs.find((d) => d.obj.kind === 'Service' && d.obj.metadata?.name === url.hostname);
    expect(redis, `a Service named ${url.hostname}`).toBeDefined();
    expect((redis!.obj as unknown as IService).spec!.ports!.map((p) => p.port)).toContain(Number(url.port));
  });
});
