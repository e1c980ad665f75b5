/**
 * The model page's new parts (issues 18, 20, 21): the Monitoring section drawn from the monitoring
 * document and proposals, the override mark of a version deployed by break-glass, run links that
 * name their pipeline, and the MLflow zip through the console. Numbers are checked as drawn: the
 * stat values, the bar geometry, the CI text.
 */
import type { ConsoleAccess } from '../../../lib/console';
import { barChart, ChartIds } from '../../../lib/console/charts';
import type { ModelPageView } from '../../../lib/console/pages/models';
import { renderModelPage } from '../../../lib/console/pages/models';
import { featureDriftRows, monitoringSection } from '../../../lib/console/pages/monitoring';
import { renderRunsPage } from '../../../lib/console/runs';
import type { MonitoringDoc, ProposalDoc } from '../../../lib/monitoring/records';
import type { ModelHead, ModelVersion, OverrideMark } from '../../../lib/registry/records';
import type { RunSummary } from '../../../lib/runs/store';

const at = (h: number) => new Date(Date.UTC(2026, 11, 5, h)).toISOString();

const doc: MonitoringDoc = {
  id: 'monitoring',
  kind: 'monitoring',
  modelName: 'churn',
  pipeline: 'churn-daily',
  version: 2,
  window: { from: at(6), to: at(7) },
  computedAt: at(7),
  samples: { requests: 300, rows: 900 },
  traffic: { requests: 1200, errors: 15, errorRate: 0.0125, latencyP50Ms: 12.5, latencyP99Ms: 80 },
  featureDrift: {
    status: 'drifted',
    driftedShare: 0.5,
    driftedColumns: ['age'],
    criticalDrifted: [],
    rule: 'share of drifted features > 0.3',
    columns: [
      {
        column: 'age',
        status: 'drifted',
        referenceCount: 5000,
        currentCount: 900,
        metrics: {
          psi: { value: 0.31, threshold: 0.2, drifted: true },
          ks: { value: 0.08, threshold: 0.1, drifted: false },
        },
      },
      {
        column: 'plan',
        status: 'stable',
        referenceCount: 5000,
        currentCount: 900,
        metrics: { chi2: { value: 0.05, threshold: 0.2, drifted: false } },
      },
      {
        column: 'email',
        status: 'skipped',
        reason: 'hashed by the contract',
        referenceCount: 0,
        currentCount: 0,
        metrics: {},
      },
    ],
  },
  predictionDrift: { psi: 0.27 },
  live: {
    metric: 'accuracy',
    labels: 150,
    value: 0.82,
    ci: { lower: 0.78, upper: 0.86, confidence: 0.95 },
    since: at(0),
  },
  finding: {
    drifted: true,
    reasons: ['feature drift: age drifted (share of drifted features > 0.3)'],
    proposal: { id: 'prop-1' },
  },
};

const proposal = (id: string, h: number, decision?: ProposalDoc['decision']): ProposalDoc => ({
  id,
  kind: 'proposal',
  modelName: 'churn',
  pipeline: 'churn-daily',
  state: decision ? (decision.decision === 'accept' ? 'accepted' : 'dismissed') : 'open',
  createdAt: at(h),
  evidence: {
    window: { from: at(h - 1), to: at(h) },
    version: 2,
    reasons: ['feature drift: age drifted'],
    driftedColumns: ['age'],
    predictionPsi: 0.27,
    samples: 900,
  },
  reviewers: ['ana@example.com'],
  notified: [],
  ...(decision ? { decision } : {}),
});

const section = (view: Parameters<typeof monitoringSection>[0]) =>
  monitoringSection(view, new ChartIds()).toString();

describe('the Monitoring section', () => {
  it('shows volume, error rate and latency of the window as the document holds them', () => {
    const html = section({ doc, proposals: [] });
    expect(html).toContain('data-mon="requests">1200<');
    expect(html).toContain('data-mon="errorRate">1.25 %<');
    expect(html).toContain('data-mon="p50">12.5 ms<');
    expect(html).toContain('data-mon="p99">80 ms<');
    expect(html).toContain('300 sampled, 900 rows');
    // The latency chart's text alternative carries both numbers.
    expect(html).toContain('p50 12.5 ms; p99 80 ms.');
  });

  it('draws feature drift per feature as the worst metric against its threshold', () => {
    const rows = featureDriftRows(doc);
    expect(rows).toEqual([
      { label: 'age', value: 0.31, limit: 0.2, bad: true, metric: 'psi' },
      { label: 'plan', value: 0.05, limit: 0.2, bad: false, metric: 'chi2' },
      { label: 'email', value: null },
    ]);
    const html = section({ doc, proposals: [] });
    expect(html).toContain('age 0.31 (limit 0.2, crossed); plan 0.05 (limit 0.2); email —.');
    expect(html).toContain('<span data-metric="psi" data-value="0.31" class="down">psi 0.31 / 0.2</span>');
    expect(html).toContain('data-mon="featureDrift">drifted<');
    expect(html).toContain('50 % of features drifted');
    expect(html).toContain('hashed by the contract');
    expect(html).toContain('data-mon="predictionPsi" data-value="0.27"');
    expect(html).toContain('<strong>Drift finding</strong>');
    expect(html).toContain('proposal <code>prop-1</code>');
  });

  it('shows the live metric with its CI once labels arrived, and says how to send them before', () => {
    const html = section({ doc, proposals: [] });
    expect(html).toContain('Live accuracy <strong>0.82</strong> (95 % CI 0.78 to 0.86) from 150 labels');
    expect(html).toContain('live 0.82 (interval 0.78 to 0.86).');
    const { live: _live, ...noLabels } = doc;
    expect(section({ doc: noLabels, proposals: [] })).toContain('No feedback labels yet');
  });

  it('lists proposals newest first with their decisions and the run an accepted one started', () => {
    const html = section({
      doc,
      proposals: [
        proposal('prop-old', 3, { decision: 'dismiss', by: 'bo@example.com', at: at(4), reason: 'seasonal' }),
        proposal('prop-new', 6, { decision: 'accept', by: 'ana@example.com', at: at(7), runId: 'r-77' }),
        proposal('prop-open', 5),
      ],
    });
    const order = ['prop-new', 'prop-open', 'prop-old'].map((id) => html.indexOf(`data-proposal="${id}"`));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(html).toContain('accepted by ana@example.com');
    expect(html).toContain('href="/runs/churn-daily/r-77"');
    expect(html).toContain('dismissed by bo@example.com');
    expect(html).toContain('“seasonal”');
    expect(html).toContain('waiting for ana@example.com');
  });

  it('before the first window says so and still lists proposals', () => {
    const html = section({ proposals: [proposal('p', 5)] });
    expect(html).toContain('data-mon="none"');
    expect(html).toContain('data-proposal="p"');
  });
});

describe('barChart', () => {
  it('scales bars from zero to 1.08 × the largest value or limit', () => {
    const svg = barChart(new ChartIds(), 'x', [
      { label: 'a', value: 50, limit: 100 },
      { label: 'b', value: 100 },
    ]).toString();
    // Plot width 560 − 120 − 70 = 370; max 108: a is 50/108 of it, b 100/108.
    const widths = [...svg.matchAll(/<rect x="120" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths).toEqual([171.3, 342.6]);
    // a's limit tick at 120 + 100/108 × 370.
    expect(svg).toContain('x1="462.6" x2="462.6"');
  });
});

const version = (v: number, extra: Partial<ModelVersion> = {}): ModelVersion => ({
  id: `version-${v}`,
  kind: 'version',
  modelName: 'churn',
  version: v,
  modelDigest: String(v).repeat(64),
  artifactUri: `models/churn/v${v}`,
  datasetDigest: 'a7'.repeat(32),
  metrics: { accuracy: 0.8 + v / 100 },
  trainingSpec: {},
  algorithm: 'logistic_regression',
  runId: `run-${v}`,
  createdAt: at(v),
  tags: { pipeline: 'churn-daily' },
  ...extra,
});
const mark: OverrideMark = {
  at: at(9),
  by: 'master key',
  reason: 'hotfix for <b>outage</b>',
  moveSeq: 3,
  review: 'required',
  reviewApprovalId: 'override-churn-2-3:approval',
  reviewRunId: 'override-churn-2-3',
  reviewDue: at(33),
};
const head: ModelHead = {
  id: 'head',
  kind: 'head',
  modelName: 'churn',
  latestVersion: 2,
  aliasSeq: 3,
  aliases: { production: { version: 2, seq: 3, movedAt: at(9), movedBy: 'master key' } },
  tags: {},
  createdAt: at(1),
  updatedAt: at(9),
};
const view: ModelPageView = {
  model: {
    head,
    versions: [version(2, { override: mark }), version(1)],
    aliasHistory: [
      {
        id: 'm1',
        kind: 'aliasMove',
        modelName: 'churn',
        seq: 1,
        alias: 'production',
        from: null,
        to: 1,
        by: 'deploy',
        at: at(3),
        reason: 'approved',
        runId: 'run-1',
      },
      {
        id: 'm3',
        kind: 'aliasMove',
        modelName: 'churn',
        seq: 3,
        alias: 'production',
        from: 1,
        to: 2,
        by: 'master key',
        at: at(9),
        reason: 'override: hotfix',
      },
    ],
  },
  approvals: [],
  monitoring: { doc, proposals: [proposal('prop-1', 7)] },
};
const viewer: ConsoleAccess = { who: 'v@example.com', canView: true, canOperate: false, local: false };

describe('the model page', () => {
  it('marks a version deployed by override until its review is decided', () => {
    const html = renderModelPage(view, viewer, {}).body;
    expect(html).toContain('data-override-notice="2"');
    expect(html).toContain('<strong>v2: override, review required</strong>');
    expect(html).toContain('hotfix for &lt;b&gt;outage&lt;/b&gt;');
    expect(html).toContain('<code>override-churn-2-3:approval</code>');
    // The production stat, the version row and the lineage each carry the mark; the alias move too.
    expect(html.match(/data-override="required"/g)).toHaveLength(3);
    expect(html).toContain('data-override-move="3"');
    const reviewed = renderModelPage(
      {
        ...view,
        model: {
          ...view.model,
          versions: [
            version(2, { override: { ...mark, review: 'reviewed', reviewedAt: at(20) } }),
            version(1),
          ],
        },
      },
      viewer,
      {},
    ).body;
    expect(reviewed).not.toContain('data-override-notice');
    expect(reviewed).toContain('override, reviewed');
  });

  it('links runs on the path that names the pipeline and the MLflow zip through the console', () => {
    const html = renderModelPage(view, viewer, {}).body;
    expect(html).toContain('href="/runs/churn-daily/run-2"');
    expect(html).toContain('href="/runs/churn-daily/run-1"');
    expect(html).not.toMatch(/href="\/runs\/run-\d"/);
    expect(html).toContain('href="/models/churn/versions/2/mlflow"');
    expect(html).not.toContain('/api/models/churn/versions/2/mlflow');
  });

  it('shows monitoring in its section, or why it could not be read', () => {
    const html = renderModelPage(view, viewer, {}).body;
    expect(html).toContain('<h2 id="monitoring">Monitoring</h2>');
    expect(html).toContain('data-mon="requests">1200<');
    const failed = renderModelPage(
      { ...view, monitoring: undefined, monitoringProblem: 'traffic container unavailable' },
      viewer,
      {},
    ).body;
    expect(failed).toContain('Monitoring could not be read: traffic container unavailable');
  });

  it('stays under 100 KB with 50 versions, 60 monitored features and 20 proposals', () => {
    const many: ModelPageView = {
      ...view,
      model: {
        ...view.model,
        versions: Array.from({ length: 50 }, (_, i) => version(50 - i, i === 0 ? { override: mark } : {})),
      },
      monitoring: {
        doc: {
          ...doc,
          featureDrift: {
            ...doc.featureDrift,
            columns: Array.from({ length: 60 }, (_, i) => ({
              ...doc.featureDrift.columns[0]!,
              column: `feature_${i}`,
            })),
          },
        },
        proposals: Array.from({ length: 30 }, (_, i) => proposal(`p${i}`, i % 20)),
      },
    };
    const bytes = Buffer.byteLength(renderModelPage(many, viewer, {}).body);
    expect(bytes).toBeLessThan(100 * 1024);
  });
});

describe('the runs list', () => {
  it('marks runs whose model went to production by override, from one lookup for the page', async () => {
    const runs: RunSummary[] = [
      {
        id: 'run-2',
        pipeline: 'churn-daily',
        pipelineVersion: 1,
        status: 'stopped',
        stopReason: 'approval_rejected',
        createdAt: at(5),
        endedAt: at(6),
        trigger: { kind: 'http', by: 'ana' },
      },
      {
        id: 'run-1',
        pipeline: 'churn-daily',
        pipelineVersion: 1,
        status: 'succeeded',
        createdAt: at(2),
        endedAt: at(3),
        trigger: { kind: 'http', by: 'ana' },
      },
    ];
    const asked: string[][] = [];
    const page = await renderRunsPage(
      {
        runs: { page: async () => ({ runs }) },
        now: () => new Date(at(10)),
        overrides: async (ids) => {
          asked.push([...ids]);
          return new Map([['run-2', { modelName: 'churn', version: 2, override: mark }]]);
        },
      },
      new URLSearchParams(),
      {},
    );
    expect(asked).toEqual([['run-2', 'run-1']]);
    const row = (id: string) => {
      const start = page.body.indexOf(`href="/runs/churn-daily/${id}"`);
      return page.body.slice(start, page.body.indexOf('</tr>', start));
    };
    expect(row('run-2')).toContain('data-override="required"');
    expect(row('run-2')).toContain('churn v2');
    expect(row('run-1')).not.toContain('data-override');
  });
});
