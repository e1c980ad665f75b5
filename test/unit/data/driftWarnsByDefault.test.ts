import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import type { DatasetContractInput } from '../../../lib/contracts/datasetContract';
import { validateTable } from '../../../lib/data/checking/validateTable';
import type { ValidationReport } from '../../../lib/data/checking/report';
import { buildEvidence } from '../../../lib/runs/evidence';
import type { EvaluationReport } from '../../../lib/evaluation/report';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { driftHeader, renderApprovalPage } from '../../../lib/approval/page';
import { decide } from '../../../lib/approval/policy';
import { sampleApprovalInput, sampleRecord } from '../../support/approvalSample';
import { rng } from '../../../bench/data/generate';
import { parse } from './helpers';

/**
 * Issue 16: one feature multiplied by ten (PSI ≈ 8, KS 1, range [7, 28] → [70, 281]) passed
 * validation with zero warnings, because the default dataset verdict needs half the columns (or a
 * critical one) to drift; and the approval page said "no drift" above a table with a drifted row.
 */

const COLUMNS = ['mean_radius', ...Array.from({ length: 29 }, (_, i) => `f${i + 1}`)];

function csv(rows: number, seed: number, radiusScale: number): string {
  const r = rng(seed);
  const lines = [COLUMNS.join(',')];
  for (let i = 0; i < rows; i++) {
    const radius = (7 + 21 * r()) * radiusScale;
    lines.push([radius.toFixed(3), ...COLUMNS.slice(1).map(() => r().toFixed(4))].join(','));
  }
  return lines.join('\n');
}

const contract = (drift: DatasetContractInput['drift'] = {}) =>
  parseDatasetContract({ columns: COLUMNS.map((name) => ({ name, type: 'number' })), drift });

async function validate(drift?: DatasetContractInput['drift']): Promise<ValidationReport> {
  const c = contract(drift);
  const reference = await parse(csv(3000, 1, 1), { contract: c });
  const current = await parse(csv(3000, 2, 10), { contract: c });
  return validateTable({
    table: current.table,
    contract: c,
    dataset: { rows: 3000, columns: COLUMNS.length },
    reference: { info: { rows: 3000, columns: COLUMNS.length }, table: reference.table },
  }).report;
}

describe('issue 16: drift is a warning by default, and failOn can stop the run', () => {
  it('one of thirty columns ×10 warns and names the column (the dataset verdict stays stable)', async () => {
    const report = await validate();
    expect(report.drift).toMatchObject({
      status: 'stable',
      driftedColumns: ['mean_radius'],
      testedColumns: 30,
    });
    expect(report.summary.status).toBe('warning');
    expect(report.summary.headline).toContain('drift in 1 of 30 columns: mean_radius');
    expect(report.summary.driftedColumns).toEqual(['mean_radius']);
  });

  it('the ×10 range is a breaking schema change: a warning by default, named in the headline', async () => {
    const report = await validate();
    expect(report.schemaDiff?.changes).toContainEqual(
      expect.objectContaining({ kind: 'rangeChanged', column: 'mean_radius', breaking: true }),
    );
    expect(report.summary.breakingSchemaChanges).toBeGreaterThan(0);
    expect(report.summary.status).toBe('warning');
    expect(report.summary.headline).toMatch(/breaking schema change/);
  });

  it('failOn breakingSchemaChange or columnDrift fails validation (passed: false stops the run)', async () => {
    expect((await validate({ verdict: { failOn: ['breakingSchemaChange'] } })).summary.status).toBe('failed');
    const byColumn = await validate({ verdict: { failOn: ['columnDrift'] } });
    expect(byColumn.summary.status).toBe('failed');
    expect(byColumn.summary.headline).toContain('mean_radius');
  });

  it('failOn is checked: an unknown finding is refused with the field named', () => {
    const r = parseDatasetContract.bind(null, {
      columns: [{ name: 'a', type: 'number' }],
      drift: { verdict: { failOn: ['everything'] } },
    });
    expect(r).toThrow(/failOn/);
  });

  it('the approval page header names the drifted column and agrees with its table', async () => {
    const report = await validate();
    const evaluation = {
      primaryMetric: 'roc_auc',
      candidate: { metrics: { roc_auc: 0.9 } },
      slices: [],
      verdict: { passed: true, reasons: [] },
    } as unknown as EvaluationReport;
    const run = { steps: [] } as unknown as RunDocument;
    const evidence = buildEvidence({ run, validation: report, evaluation, reports: {} });
    expect(evidence.drift).toMatchObject({
      drifted: false,
      columns: ['mean_radius'],
      driftedCount: 1,
      tested: 30,
    });
    // 30 columns × 3 metrics = 90 rows, 40 kept: the drifted ones come first.
    expect((evidence.drift!.features ?? []).filter((f) => f.drifted).map((f) => f.feature)).toContain(
      'mean_radius',
    );

    const record = sampleRecord(undefined, {
      evidence: { ...sampleApprovalInput().evidence, ...evidence } as ReturnType<
        typeof sampleApprovalInput
      >['evidence'],
    });
    const now = new Date('2026-03-01T11:00:00.000Z');
    const { body } = renderApprovalPage({
      record,
      decisions: [],
      verdict: decide(record, [], now),
      reviewer: 'bob@example.com',
      linkExpiresAt: new Date(record.deadline),
      now,
      actionPath: '/api/approvals/abc.def',
      requireSignin: false,
    });
    expect(body).toContain('drift in 1 of 30 columns: mean_radius');
    expect(body).not.toContain('no drift');
    expect(body).toContain('passed with warnings');
    const drifted = [
      ...body.matchAll(/<td><code>([^<]+)<\/code><\/td>[\s\S]*?<span class="chip (\w+)">(\w[\w ]*)<\/span>/g),
    ]
      .filter((m) => m[3] === 'drifted')
      .map((m) => m[1]);
    expect(new Set(drifted)).toEqual(new Set(['mean_radius']));
  });

  it('an older record without the drifted column list takes the header from its table', () => {
    expect(
      driftHeader({
        drifted: false,
        features: [
          { feature: 'a', statistic: 'psi', value: 8.3, threshold: 0.2, drifted: true },
          { feature: 'b', statistic: 'psi', value: 0.01, threshold: 0.2, drifted: false },
        ],
      }),
    ).toMatchObject({ chip: 'pending', text: 'drift in 1 of 2 columns: a' });
    expect(
      driftHeader({
        drifted: false,
        features: [{ feature: 'b', statistic: 'psi', value: 0.01, threshold: 0.2, drifted: false }],
      }),
    ).toMatchObject({ chip: 'ok', text: 'no drift' });
  });

  it('many drifted columns: the header counts them all and names the first five', () => {
    const names = Array.from({ length: 25 }, (_, i) => `c${i}`);
    expect(
      driftHeader({
        drifted: true,
        columns: names.slice(0, 20),
        driftedCount: 25,
        tested: 30,
        features: [],
      }),
    ).toMatchObject({ chip: 'fail', text: 'drift in 25 of 30 columns: c0, c1, c2, c3, c4 and 20 more' });
  });

  it('a metric over its threshold in a column that did not drift (columnRule "all") is not called drifted', () => {
    const h = driftHeader({
      drifted: false,
      columns: [],
      driftedCount: 0,
      tested: 2,
      features: [{ feature: 'a', statistic: 'ks', value: 0.3, threshold: 0.1, drifted: true }],
    });
    expect(h).toMatchObject({ chip: 'ok', text: 'no drift', columns: [] });
  });
});
