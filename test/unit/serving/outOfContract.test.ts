/**
 * Issue 16: "predict accepts anything in range of the types". Values outside the dataset contract's
 * min/max or its categories are flagged per row, or refused when the pipeline says so; an error
 * lists every bad field, not the first.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { createScoreHandler } from '../../../functions/support/scoreHandler';
import type { DatasetContract } from '../../../lib/contracts/datasetContract';
import { OnnxModels } from '../../../lib/mlmodel/onnxModels';
import type { FolderStore } from '../../../lib/mlmodel/blobFolder';
import { contractLimits } from '../../../lib/pipelines/servingLimits';
import type { ModelHead, ModelVersion } from '../../../lib/registry/records';
import { ProductionModels } from '../../../lib/serving/production';
import type { RowWarning } from '../../../lib/serving/rows';
import { RowsError, compileRowValidator } from '../../../lib/serving/rows';
import { serializeModel } from '../../../lib/training/models/artifact';
import { logisticModel, sampleRow } from '../../support/lrModel';

const contract = {
  columns: [
    { name: 'size', type: 'number', nullable: false, min: 0, max: 10 },
    { name: 'color', type: 'category', nullable: true, values: ['red', 'blue', 'green'] },
    { name: 'label', type: 'category', nullable: false },
  ],
} as unknown as DatasetContract;
const features = [
  { name: 'size', type: 'numeric' as const },
  { name: 'color', type: 'categorical' as const, categories: ['red', 'blue'] },
];

describe('predict rows against the pipeline contract', () => {
  it('flags each out-of-range value and each category outside the contract on its row', () => {
    const validate = compileRowValidator(features, contractLimits({ dataset: contract }));
    const warnings: RowWarning[] = [];
    validate(
      {
        rows: [
          { size: 5, color: 'red' },
          { size: 70, color: 'purple' },
          { size: -1, color: 'green' },
        ],
      },
      warnings,
    );
    expect(warnings).toEqual([
      expect.objectContaining({ row: 1, field: 'size', code: 'out_of_range' }),
      expect.objectContaining({ row: 1, field: 'color', code: 'value_not_in_contract' }),
      expect.objectContaining({ row: 2, field: 'size', code: 'out_of_range' }),
      // In the contract but never seen by the model: still said.
      expect.objectContaining({ row: 2, field: 'color', code: 'unseen_category' }),
    ]);
    expect(warnings[0]!.message).toBe("size = 70 is outside the contract's range [0, 10]");
  });

  it("refuses them, every one listed, when the pipeline's serving.outOfContract is refuse", () => {
    const validate = compileRowValidator(
      features,
      contractLimits({ dataset: contract, serving: { outOfContract: 'refuse' } }),
    );
    let err: RowsError | undefined;
    try {
      validate({
        rows: [
          { size: 70, color: 'purple' },
          { size: 1, color: 'red' },
          { size: 11, color: 'green' },
        ],
      });
    } catch (e) {
      err = e as RowsError;
    }
    expect(err).toBeInstanceOf(RowsError);
    expect(err!.status).toBe(400);
    expect(err!.errors.map((e) => [e.field, e.code])).toEqual([
      ['rows[0].size', 'out_of_range'],
      ['rows[0].color', 'value_not_in_contract'],
      ['rows[2].size', 'out_of_range'],
      ['rows[2].color', 'unseen_category'],
    ]);
    expect(err!.message).toMatch(/^4 bad fields: rows\[0\]\.size: size = 70/);
  });

  it('lists every bad field of a malformed request, not the first', () => {
    const validate = compileRowValidator(features);
    expect(() => validate({ rows: [{ size: 'x', color: 1 }, { color: 'red' }, 'no'] })).toThrow(
      expect.objectContaining({
        errors: [
          expect.objectContaining({ field: 'rows[0].size' }),
          expect.objectContaining({ field: 'rows[0].color' }),
          expect.objectContaining({ field: 'rows[1].size' }),
          expect.objectContaining({ field: 'rows[2]' }),
        ],
      }),
    );
  });
});

describe('the predict endpoint with a pipeline contract', () => {
  const at = '2026-03-01T00:00:00.000Z';
  const artifact = serializeModel(logisticModel(3, 1));
  const version: ModelVersion = {
    id: 'version-1',
    kind: 'version',
    modelName: 'm',
    version: 1,
    modelDigest: artifact.digest,
    artifactUri: 'mem://1',
    datasetDigest: '0'.repeat(64),
    metrics: {},
    trainingSpec: {},
    algorithm: 'logistic_regression',
    runId: 'r',
    createdAt: at,
    tags: { pipeline: 'p' },
  };
  const head: ModelHead = {
    id: 'head',
    kind: 'head',
    modelName: 'm',
    latestVersion: 1,
    aliasSeq: 1,
    aliases: { production: { version: 1, seq: 1, movedAt: at, movedBy: 't' } },
    tags: {},
    createdAt: at,
    updatedAt: at,
  };
  const bounded = {
    columns: [0, 1, 2].map((i) => ({ name: `f${i}`, type: 'number', nullable: false, min: -1, max: 1 })),
  } as unknown as DatasetContract;
  const handler = (outOfContract: 'warn' | 'refuse') => {
    const seen: ModelVersion[] = [];
    const models = new ProductionModels({
      registry: { getHead: async () => head, getVersion: async () => version },
      scorers: {
        store: { getBuffer: async () => ({ data: artifact.bytes }) } as unknown as FolderStore,
        onnx: new OnnxModels(),
      },
      aliasTtlMs: 60_000,
      contractLimitsOf: async (v) => {
        seen.push(v);
        return contractLimits({ dataset: bounded, serving: { outOfContract } });
      },
    });
    return { seen, call: createScoreHandler(async () => models) };
  };
  const post = (rows: unknown[]) =>
    new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/models/m/predict',
      params: { name: 'm' },
      headers: { 'content-type': 'application/json' },
      body: { string: JSON.stringify({ rows }) },
    });

  it('scores out-of-contract rows with warnings by default', async () => {
    const { call, seen } = handler('warn');
    const res = await call(post([sampleRow(3), { ...sampleRow(3), f1: 9 }]), new InvocationContext());
    expect(res.status).toBe(200);
    const body = res.jsonBody as { predictions: unknown[]; warnings: RowWarning[] };
    expect(body.predictions).toHaveLength(2);
    expect(body.warnings).toEqual([expect.objectContaining({ row: 1, field: 'f1', code: 'out_of_range' })]);
    expect(seen[0]!.tags.pipeline).toBe('p');
  });

  it('answers 400 with every bad field when the pipeline refuses', async () => {
    const { call } = handler('refuse');
    const res = await call(
      post([{ ...sampleRow(3), f0: 5 }, sampleRow(3), { ...sampleRow(3), f2: -4 }]),
      new InvocationContext(),
    );
    expect(res.status).toBe(400);
    const body = res.jsonBody as { code: string; field: string; errors: { field: string }[] };
    expect(body.code).toBe('invalid_rows');
    expect(body.field).toBe('rows[0].f0');
    expect(body.errors.map((e) => e.field)).toEqual(['rows[0].f0', 'rows[2].f2']);
  });
});
