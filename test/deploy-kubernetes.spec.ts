import { PATH_METADATA } from '@nestjs/common/constants';
import { getMetadataStorage } from 'class-validator';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { APP_ROLES, EnvSchema, validateEnv } from '../src/config/env.schema';
import { HealthController } from '../src/health/health.controller';
import { MetricsService, QUEUE_STATES } from '../src/metrics/metrics.service';
import { QueueName } from '../src/queue/queue.constants';

/*
 * No schema validator can be installed here (kubeconform and kubeval are in neither npm nor Debian, and their schemas
 * are downloaded from the network), so the manifests are parsed and their key fields checked against the code.
 */
const BASE = join(__dirname, '..', 'deploy', 'kubernetes', 'base');
/** Seconds the pods get over SHUTDOWN_TIMEOUT_MS between SIGTERM and SIGKILL. */
const GRACE_MARGIN_S = 5;

type Labels = Record<string, string>;
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports: { name: string; containerPort: number }[];
  startupProbe?: Probe;
  livenessProbe: Probe;
  readinessProbe: Probe;
  resources: { requests?: { cpu?: string; memory?: string }; limits?: { memory?: string } };
}
interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Labels };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
interface Deployment extends Manifest {
  spec: {
    selector: { matchLabels: Labels };
    template: {
      metadata: { labels: Labels };
      spec: { terminationGracePeriodSeconds: number; containers: Container[] };
    };
  };
}

const kustomization = parse(readFileSync(join(BASE, 'kustomization.yaml'), 'utf8')) as {
  resources: string[];
  images: { name: string }[];
};
const manifests: Manifest[] = kustomization.resources.map((file) => ({
  ...(parse(readFileSync(join(BASE, file), 'utf8')) as Manifest),
  file,
}));
const byKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const deployments = byKind('Deployment') as Deployment[];
const deployment = (role: string) => {
  const found = deployments.find((d) => d.spec.template.spec.containers[0].env?.some((e) => e.value === role));
  if (!found) throw new Error(`no Deployment runs APP_ROLE=${role}`);
  return found;
};
const configMap = byKind('ConfigMap')[0];
const secret = byKind('Secret')[0];

/** Every variable the platform reads: each property of EnvSchema carries a validator. */
const envNames = new Set(
  getMetadataStorage()
    .getTargetValidationMetadatas(EnvSchema, '', true, false)
    .map((m) => m.propertyName),
);

/** Whether `selector` picks pods labelled `labels`. */
const selects = (selector: Labels, labels: Labels) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('Kubernetes manifests (deploy/kubernetes/base)', () => {
  it('are all listed in kustomization.yaml, each a named object of a known kind', () => {
    const files = readdirSync(BASE).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    expect(manifests.map((m) => m.kind).sort()).toEqual([
      'ConfigMap',
      'Deployment',
      'Deployment',
      'PodDisruptionBudget',
      'PodDisruptionBudget',
      'ScaledObject',
      'Secret',
      'Service',
    ]);
    const unnamed = manifests.filter((m) => typeof m.apiVersion !== 'string' || typeof m.metadata?.name !== 'string');
    expect(unnamed.map((m) => m.file)).toEqual([]);
  });

  it('run the API and the worker roles of one image, reading only variables the platform knows', () => {
    expect(APP_ROLES).toEqual(expect.arrayContaining(['api', 'worker']));
    const names = [
      ...Object.keys(configMap.data ?? {}),
      ...Object.keys(secret.stringData ?? {}),
      ...deployments.flatMap((d) => d.spec.template.spec.containers.flatMap((c) => (c.env ?? []).map((e) => e.name))),
    ];
    expect(names.filter((name) => !envNames.has(name))).toEqual([]);
    for (const d of deployments) {
      const [container] = d.spec.template.spec.containers;
      expect(kustomization.images.map((i) => i.name)).toContain(container.image);
      expect(container.envFrom).toEqual([
        { configMapRef: { name: configMap.metadata.name } },
        { secretRef: { name: secret.metadata.name } },
      ]);
    }
    expect(deployment('api').metadata.name).not.toBe(deployment('worker').metadata.name);
  });

  it('configure a valid production platform once the Secret template is filled in, and refuse the template as is', () => {
    const filled = {
      JWT_SECRET: 'a'.repeat(64),
      DATABASE_URL: 'postgres://media:pw@postgres:5432/media_tasks',
      REDIS_URL: 'redis://redis:6379',
      WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 1).toString('base64')}`,
      S3_ACCESS_KEY_ID: 'key',
      S3_SECRET_ACCESS_KEY: 'secret',
    };
    expect(Object.keys(filled).sort()).toEqual(Object.keys(secret.stringData ?? {}).sort());
    for (const role of ['api', 'worker']) {
      const env = validateEnv({ ...configMap.data, ...filled, APP_ROLE: role });
      expect({ role: env.APP_ROLE, production: env.NODE_ENV }).toEqual({ role, production: 'production' });
    }
    expect(() => validateEnv({ ...configMap.data, ...secret.stringData, APP_ROLE: 'api' })).toThrow(/JWT_SECRET/);
  });

  it('probe the health routes the app serves, on the port it listens on', () => {
    const routes = Object.getOwnPropertyNames(HealthController.prototype).map((method) =>
      Reflect.getMetadata(PATH_METADATA, (HealthController.prototype as unknown as Record<string, object>)[method]),
    );
    expect(routes).toEqual(expect.arrayContaining(['health/live', 'health/ready']));
    const port = Number(configMap.data?.PORT ?? new EnvSchema().PORT);
    expect(port).toBe(new EnvSchema().PORT);
    for (const d of deployments) {
      const [container] = d.spec.template.spec.containers;
      const named = (p: string | number) =>
        typeof p === 'number' ? p : container.ports.find((x) => x.name === p)?.containerPort;
      const probes = {
        startup: container.startupProbe,
        liveness: container.livenessProbe,
        readiness: container.readinessProbe,
      };
      expect({ deployment: d.metadata.name, paths: Object.values(probes).map((p) => p?.httpGet.path) }).toEqual({
        deployment: d.metadata.name,
        paths: ['/health/live', '/health/live', '/health/ready'],
      });
      for (const probe of Object.values(probes)) expect(named(probe!.httpGet.port)).toBe(port);
      // Requests for scheduling, a memory limit so a leak restarts the pod instead of starving the node.
      expect(container.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
      expect(container.resources.limits?.memory).toEqual(expect.any(String));
    }
  });

  it('give each pod more time to stop than SHUTDOWN_TIMEOUT_MS, so a shutdown is never cut by SIGKILL', () => {
    const shutdownMs = Math.max(new EnvSchema().SHUTDOWN_TIMEOUT_MS, Number(configMap.data?.SHUTDOWN_TIMEOUT_MS ?? 0));
    for (const d of deployments) {
      expect({ deployment: d.metadata.name, grace: d.spec.template.spec.terminationGracePeriodSeconds }).toEqual({
        deployment: d.metadata.name,
        grace: expect.any(Number),
      });
      expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(
        shutdownMs / 1000 + GRACE_MARGIN_S,
      );
    }
  });

  it('select the right pods: each Deployment its template, the Service the API, each PodDisruptionBudget one role', () => {
    for (const d of deployments)
      expect(selects(d.spec.selector.matchLabels, d.spec.template.metadata.labels)).toBe(true);
    const podsOf = (selector: Labels) =>
      deployments.filter((d) => selects(selector, d.spec.template.metadata.labels)).map((d) => d.metadata.name);
    const [service] = byKind('Service') as (Manifest & {
      spec: { selector: Labels; ports: { targetPort: string | number }[] };
    })[];
    expect(podsOf(service.spec.selector)).toEqual([deployment('api').metadata.name]);
    const apiPorts = deployment('api').spec.template.spec.containers[0].ports.map((p) => p.name);
    for (const port of service.spec.ports) expect(apiPorts).toContain(port.targetPort);
    const budgets = byKind('PodDisruptionBudget') as (Manifest & { spec: { selector: { matchLabels: Labels } } })[];
    expect(budgets.map((b) => podsOf(b.spec.selector.matchLabels)).sort()).toEqual([
      [deployment('api').metadata.name],
      [deployment('worker').metadata.name],
    ]);
  });

  it('scale the workers with KEDA on the depth of the tasks queue, as media_queue_jobs reports it', () => {
    const [scaled] = byKind('ScaledObject') as (Manifest & {
      spec: {
        scaleTargetRef: { kind: string; name: string };
        minReplicaCount: number;
        maxReplicaCount: number;
        triggers: { type: string; metadata: { query: string; threshold: string; serverAddress: string } }[];
      };
    })[];
    expect(scaled.apiVersion).toBe('keda.sh/v1alpha1');
    expect(scaled.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: deployment('worker').metadata.name });
    expect(deployment('worker').spec).not.toHaveProperty('replicas'); // KEDA owns them
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaled.spec.maxReplicaCount).toBeGreaterThan(scaled.spec.minReplicaCount);
    const [trigger] = scaled.spec.triggers;
    expect(trigger.type).toBe('prometheus');
    expect(Number(trigger.metadata.threshold)).toBeGreaterThan(0);
    // The metric as the app registers it (its dependencies are only read at scrape time).
    const none = {} as never;
    const registry = new MetricsService(none, none, none, none, none).registry;
    for (const [name] of trigger.metadata.query.matchAll(/\bmedia_[a-z_]+/g)) {
      expect({ name, registered: !!registry.getSingleMetric(name) }).toEqual({ name, registered: true });
    }
    const selector = /\bmedia_queue_jobs\{queue="([^"]+)", state=~"([^"]+)"\}/.exec(trigger.metadata.query);
    expect(selector).not.toBeNull();
    expect(selector![1]).toBe(QueueName.Tasks);
    const states = selector![2].split('|');
    expect(states.sort()).toEqual(['prioritized', 'waiting']);
    for (const state of states) expect(QUEUE_STATES).toContain(state);
  });
});
