import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { MetricsService } from '../src/metrics/metrics.service';
import { STATE_BACKENDS } from './state-backends';
import { TestApp } from './support/test-app';
import { waitUntil } from './support/wait';

const DIR = join(__dirname, '..', 'deploy');
const ALERTS = join(DIR, 'prometheus', 'alerts.yml');
const ALERT_TESTS = join(DIR, 'prometheus', 'alerts.test.yml');
const DASHBOARD = join(DIR, 'grafana', 'dashboard.json');

/** Labels Prometheus adds to every scraped series (the test series carry them as two processes would). */
const TARGET_LABELS = new Set(['instance', 'job']);

interface AlertRule {
  alert: string;
  expr: string;
}
interface AlertTest {
  input_series: { series: string }[];
  alert_rule_test: { alertname: string; exp_alerts: unknown[] }[];
}

const rules = (parse(readFileSync(ALERTS, 'utf8')) as { groups: { rules: AlertRule[] }[] }).groups.flatMap(
  (g) => g.rules,
);
const alertTests = (parse(readFileSync(ALERT_TESTS, 'utf8')) as { tests: AlertTest[] }).tests;
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
  panels: { title: string; targets?: { expr: string }[] }[];
  templating: { list: { name: string; definition?: string }[] };
};

/** Runs promtool; a missing binary fails with what to install, not with an ENOENT. */
function promtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd: join(DIR, 'prometheus'), encoding: 'utf8', timeout: 60000 });
  if (run.error && 'code' in run.error && run.error.code === 'ENOENT') {
    throw new Error(
      'promtool is not installed: it comes with Debian\'s "prometheus" package (apt-get install -y prometheus; ' +
        '.ci/run installs it)',
    );
  }
  if (run.error) throw run.error;
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Every PromQL expression the alerts and the dashboard evaluate, with where it comes from. */
function expressions(): { where: string; expr: string }[] {
  return [
    ...rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr }))),
    ...dashboard.templating.list
      .filter((v) => v.definition)
      .map((v) => ({ where: `variable ${v.name}`, expr: v.definition! })),
  ];
}

/** Metric names (ours all start with media_) and the label names of the selector after each. */
function selectors(expr: string): { name: string; labels: string[] }[] {
  return [...expr.matchAll(/\b(media_[a-zA-Z0-9_:]*)(\{([^}]*)\})?/g)].map((m) => ({
    name: m[1],
    labels: [...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((l) => l[1]),
  }));
}

describe('Prometheus alert rules (deploy/prometheus)', () => {
  it('pass promtool check rules', () => {
    const { status, output } = promtool('check', 'rules', 'alerts.yml');
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(status).toBe(0);
  });

  it('pass their promtool unit tests', () => {
    const { status, output } = promtool('test', 'rules', 'alerts.test.yml');
    expect(output).toContain('SUCCESS');
    expect(status).toBe(0);
  });

  it('cover each alert the operators asked for, each tested firing and staying quiet', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual([
      'MediaNoWorker',
      'MediaProviderCircuitOpen',
      'MediaTaskFailureRateHigh',
      'MediaTasksQueueBacklogGrowing',
      'MediaWebhookDeadLetters',
      'MediaWebhookDeliveryLatencyHigh',
    ]);
    const cases = alertTests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of rules) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect({ alert, fires: mine.some((c) => c.exp_alerts.length > 0) }).toEqual({ alert, fires: true });
      expect({ alert, quiet: mine.some((c) => c.exp_alerts.length === 0) }).toEqual({ alert, quiet: true });
    }
  });
});

describe.each(STATE_BACKENDS)('the metrics the alerts and the dashboard read (queues on %s)', (backend) => {
  let t: TestApp;
  let exposition: string;

  beforeAll(async () => {
    t = await TestApp.start({ env: { QUEUE_BACKEND: backend } });
    // The workers name their connection as they start: wait until the datastore lists them.
    exposition = await waitUntil(
      'the task workers to be listed',
      async () => String((await t.request('GET', '/metrics', { token: null })).body),
      {
        timeoutMs: 20000,
        intervalMs: 100,
        // Every queue's workers, and the providers' circuits (read at scrape time, left out when slow to answer).
        until: (text) =>
          ['tasks', 'webhooks'].every((q) =>
            new RegExp(`^media_queue_workers\\{queue="${q}"\\} [1-9]`, 'm').test(text),
          ) && /^media_provider_circuit_open\{/m.test(text),
      },
    );
  });
  afterAll(() => t?.close());

  it('exists under every name and label the expressions use, as the app serves them', () => {
    const registry = t.app.get(MetricsService).registry;
    // Histograms are read through the series they expose.
    const served = new Map<string, string[]>();
    for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const labels = (registry.getSingleMetric(name) as unknown as { labelNames?: string[] })?.labelNames ?? [];
      served.set(name, labels);
      if (type === 'histogram') {
        served.set(`${name}_bucket`, [...labels, 'le']);
        served.set(`${name}_sum`, labels);
        served.set(`${name}_count`, labels);
      }
    }
    const used = [
      ...expressions(),
      ...alertTests.flatMap((test) => test.input_series.map((s) => ({ where: 'alerts.test.yml', expr: s.series }))),
    ];
    const unknown: string[] = [];
    for (const { where, expr } of used) {
      for (const { name, labels } of selectors(expr)) {
        const known = served.get(name);
        if (!known) unknown.push(`${where}: ${name}`);
        for (const label of labels.filter((l) => !TARGET_LABELS.has(l) && known && !known.includes(l))) {
          unknown.push(`${where}: ${name} has no label ${label}`);
        }
      }
    }
    expect(used.length).toBeGreaterThan(20);
    expect(unknown).toEqual([]);
  });

  it('serves the signals the alerts need: workers per queue, each provider circuit, dead letters from 0', () => {
    expect(exposition).toMatch(/^media_queue_workers\{queue="webhooks"\} [1-9]/m);
    expect(exposition).toMatch(/^media_queue_jobs\{queue="tasks",state="prioritized"\} \d+$/m);
    expect(exposition).toMatch(/^media_provider_circuit_open\{provider="openai-images"\} 0$/m);
    expect(exposition).toMatch(/^media_webhook_deliveries_total\{outcome="dead"\} 0$/m);
    expect(exposition).toContain('# TYPE media_webhook_delivery_duration_seconds histogram');
  });
});
