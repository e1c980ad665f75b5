import type { ConsoleAccess } from '../../../lib/console';
import { metricPoints, renderModelPage, type ModelPageView } from '../../../lib/console/pages/models';
import type { AliasMove, ModelHead, ModelVersion } from '../../../lib/registry/records';
import { sampleRecord } from '../../support/approvalSample';

const at = (h: number) => new Date(Date.UTC(2026, 2, 1, h)).toISOString();
const version = (v: number, roc: number): ModelVersion => ({
  id: `version-${v}`,
  kind: 'version',
  modelName: 'churn',
  version: v,
  modelDigest: String(v).repeat(64).slice(0, 64),
  artifactUri: `models/churn/v${v}`,
  datasetDigest: 'a7'.repeat(32),
  metrics: { roc_auc: roc, log_loss: 0.4 - v / 100 },
  trainingSpec: {},
  algorithm: 'logistic_regression',
  runId: `run-${v}`,
  createdAt: at(v),
  tags: {},
});
const move = (seq: number, from: number | null, to: number, reason = 'approved'): AliasMove => ({
  id: `m${seq}`,
  kind: 'aliasMove',
  modelName: 'churn',
  seq,
  alias: 'production',
  from,
  to,
  by: seq === 3 ? '<b>ops</b>' : 'deploy',
  at: at(10 + seq),
  reason,
  runId: `run-${to}`,
  ...(reason.startsWith('rollback') ? {} : { approvalRef: `run-${to}:approval` }),
});
const head: ModelHead = {
  id: 'head',
  kind: 'head',
  modelName: 'churn',
  latestVersion: 3,
  aliasSeq: 2,
  aliases: { production: { version: 2, seq: 2, movedAt: at(12), movedBy: 'deploy' } },
  tags: {},
  createdAt: at(1),
  updatedAt: at(12),
};
const approval = sampleRecord(new Date(at(2)), {
  runId: 'run-2',
  candidate: {
    modelName: 'churn',
    modelVersion: 2,
    modelDigest: '2'.repeat(64),
    datasetDigest: 'a7'.repeat(32),
  },
});
approval.evidence.metrics[0]!.candidateCi = [0.85, 0.89];

const view: ModelPageView = {
  model: {
    head,
    versions: [version(3, 0.86), version(2, 0.87), version(1, 0.85)],
    aliasHistory: [move(1, null, 1), move(2, 1, 2)],
  },
  approvals: [approval],
};
const operator: ConsoleAccess = { who: 'local', canView: true, canOperate: true, local: true };
const viewer: ConsoleAccess = { who: 'v@example.com', canView: true, canOperate: false, local: false };

describe('the model page', () => {
  it('charts each version at its registered value with the evaluation CI as a whisker', () => {
    expect(metricPoints(view, 'roc_auc')).toEqual([
      { version: 1, value: 0.85 },
      { version: 2, value: 0.87, ci: [0.85, 0.89], current: true },
      { version: 3, value: 0.86 },
    ]);
    const html = renderModelPage(view, operator, { csrf: 'tok' }).body;
    // The primary metric (from the approval evidence) is charted first.
    expect(html.indexOf('data-metric="roc_auc"')).toBeLessThan(html.indexOf('data-metric="log_loss"'));
    const chart = html.slice(html.indexOf('<svg class="chart trend"'), html.indexOf('</svg>'));
    expect(chart.match(/<g class="pt"/g)).toHaveLength(3);
    expect(chart).toContain('v2: 0.87 (CI 0.85 to 0.89), in production');
    expect(chart).not.toContain('style=');
  });

  it('offers rollback to operators only, to versions approved and in production before', () => {
    const html = renderModelPage(view, operator, { csrf: 'tok' }).body;
    expect(html).toContain('action="/models/churn/rollback"');
    expect(html).toContain('<input type="hidden" name="csrf" value="tok" />');
    expect(html).toContain('<option value="1">v1</option>');
    expect(html).not.toContain('<option value="3">');
    expect(renderModelPage(view, viewer, {}).body).not.toContain('rollback-form');
  });

  it('escapes what people wrote into the alias history', () => {
    const rolled: ModelPageView = {
      ...view,
      model: {
        ...view.model,
        aliasHistory: [...view.model.aliasHistory, move(3, 2, 1, 'rollback: <script>x</script>')],
      },
    };
    const html = renderModelPage(rolled, viewer, {}).body;
    expect(html).toContain('rollback: &lt;script&gt;x&lt;/script&gt;');
    expect(html).toContain('&lt;b&gt;ops&lt;/b&gt;');
    expect(html).not.toContain('<script>x');
  });
});
