/**
 * Training and evaluation benchmark on synthetic data (seeded, generated in memory):
 *
 *   npm run bench:train            # 100,000 rows × 20 features
 *   node dist/bench/train/train.js --rows 20000 --features 10 --resamples 500
 *
 * Prints the time to train logistic regression (binary and 3-class), the gradient-boosted trees
 * and ridge, the time to score, the time to export the trees to ONNX, and the time of a champion/challenger evaluation with the paired
 * bootstrap. Goal (issue 5): logistic regression on 100,000 × 20 in under 3 s. Then the local user
 * job (bench/train/userJob.ts, the scikit-learn example on Azurite): Sluice's time around the user's
 * process against the process's own; goal (issue 15) under 10 %. `--user-job 0` skips it.
 */
import { parseArgs } from 'node:util';
import { parseEvaluationPolicy } from '../../lib/evaluation/policy';
import { evaluateCandidate } from '../../lib/evaluation/report';
import { scoredWith } from '../../test/support/scored';
import { toOnnx } from '../../lib/training/models/onnxExport';
import { loadModel } from '../../lib/training/models/predict';
import { trainModel } from '../../lib/training/models/train';
import { parseTrainingSpec } from '../../lib/training/spec';
import type { TrainingSpecInput } from '../../lib/contracts/trainingSpec';
import { syntheticClassification, syntheticRegression } from '../../lib/training/synthetic';
import { benchUserJob } from './userJob';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    features: { type: 'string', default: '20' },
    resamples: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '100' },
    'user-job': { type: 'string', default: '1' },
  },
});
const rows = Number(values.rows);
const d = Number(values.features);
const resamples = Number(values.resamples);
const rounds = Number(values.rounds);
const features = Array.from({ length: d }, (_, j) => `x${j}`);

function time<T>(fn: () => T): { result: T; ms: number } {
  const t0 = performance.now();
  const result = fn();
  return { result, ms: performance.now() - t0 };
}

const lines: string[][] = [['case', 'time', 'detail']];
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

const binary = syntheticClassification({ rows, features: d, seed: 1 });
const multi = syntheticClassification({ rows, features: d, seed: 2, classes: 3 });
const regression = syntheticRegression({ rows, features: d, seed: 3 });
console.log(
  `synthetic data: ${rows.toLocaleString('en')} rows × ${d} features (70% train / 15% validation / 15% holdout)`,
);

function train(name: string, ds: typeof binary, spec: TrainingSpecInput) {
  const { result, ms } = time(() => trainModel(ds, parseTrainingSpec(spec)));
  const h = result.metrics.holdout ?? {};
  const quality = 'roc_auc' in h ? `holdout AUC ${h.roc_auc!.toFixed(4)}` : `holdout R² ${h.r2!.toFixed(4)}`;
  lines.push([
    name,
    fmt(ms),
    `${result.iterations} iterations, ${quality} (includes scoring train/validation/holdout)`,
  ]);
  return result;
}

const lr = train('logistic regression, binary', binary, {
  algorithm: 'logistic_regression',
  target: 'label',
  features,
});
train('logistic regression, 3 classes', multi, {
  algorithm: 'logistic_regression',
  target: 'label',
  features,
});
const gbt = train(`gradient-boosted trees, ${rounds} rounds, depth 6`, binary, {
  algorithm: 'gradient_boosting',
  target: 'label',
  features,
  hyperparameters: { rounds, earlyStoppingRounds: 0 },
});
train('ridge regression', regression, { algorithm: 'ridge', target: 'y', features });

const lrModel = loadModel(lr.model);
const gbtModel = loadModel(gbt.model);
const score = time(() => lrModel.predictProba(binary));
lines.push([
  'score: logistic regression',
  fmt(score.ms),
  `${((score.ms * 1e6) / rows).toFixed(0)} ns/row incl. encoding`,
]);
const scoreGbt = time(() => gbtModel.predictProba(binary));
lines.push([
  'score: gradient-boosted trees',
  fmt(scoreGbt.ms),
  `${((scoreGbt.ms * 1e6) / rows).toFixed(0)} ns/row`,
]);
const onnx = time(() => toOnnx(gbt.model));
lines.push([
  `ONNX export: gradient-boosted trees, ${rounds} rounds`,
  fmt(onnx.ms),
  `${(onnx.result.length / 1024).toFixed(0)} KiB ModelProto`,
]);

const evalSet = syntheticClassification({ rows, features: d, seed: 99 });
const policy = parseEvaluationPolicy({
  primaryMetric: 'roc_auc',
  comparison: { mode: 'non_inferiority', margin: 0.005 },
  guardrails: [{ metric: 'log_loss', maxDegradation: 0.01 }],
  bootstrap: { resamples, seed: 1 },
});
const evaluation = time(() =>
  evaluateCandidate({
    dataset: evalSet,
    candidate: scoredWith(gbtModel, evalSet, { digest: 'gbt' }),
    champion: scoredWith(lrModel, evalSet, { digest: 'lr' }),
    policy,
  }),
);
const diff = evaluation.result.comparison!.difference;
lines.push([
  `evaluation: ${rows.toLocaleString('en')} rows, ${resamples} paired resamples of ROC AUC`,
  fmt(evaluation.ms),
  `Δ AUC ${diff.estimate!.toFixed(4)} [${diff.lower!.toFixed(4)}, ${diff.upper!.toFixed(4)}], verdict ${evaluation.result.verdict.passed ? 'pass' : 'fail'}`,
]);

const print = () => {
  const width = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  for (const l of lines) console.log(l.map((cell, c) => cell.padEnd(width[c]!)).join('  '));
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB, node ${process.version}`);
};
if (values['user-job'] === '0') print();
else {
  benchUserJob({ rows, features: d })
    .then((more) => {
      lines.push(...more);
      print();
      process.exit(0);
    })
    .catch((err: unknown) => {
      print();
      console.error('the user-job bench failed:', err);
      process.exit(1);
    });
}
