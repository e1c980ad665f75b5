import type { ScoredModel } from '../../lib/evaluation/report';
import type { ColumnarDataset } from '../../lib/training/dataset';
import type { LoadedModel } from '../../lib/training/models/predict';

/** A built-in model's side of an evaluation, scored with the TS predict (as a legacy JSON model is). */
export function scoredWith(
  model: LoadedModel,
  dataset: ColumnarDataset,
  ref: { digest: string; version?: number },
): ScoredModel {
  return {
    ...ref,
    task: model.classes ? 'classification' : 'regression',
    target: model.definition.target.name,
    ...(model.classes ? { classes: model.classes } : {}),
    scores: model.classes
      ? { probabilities: model.predictProba(dataset) }
      : { values: model.predict(dataset) },
  };
}
