import { z } from 'zod';
import type { TrainingSpec } from '../contracts/trainingSpec';
import { trainingSpecSchema } from '../contracts/trainingSpec';
import { ValidationError } from '../errors';

/** Parses a training spec; a bad one throws a ValidationError (non-retriable) naming every issue. */
export function parseTrainingSpec(input: unknown): TrainingSpec {
  const parsed = trainingSpecSchema.safeParse(input);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ValidationError(
      'invalid_training_spec',
      `invalid training spec:\n${z.prettifyError(parsed.error)}`,
      {
        field: first && first.path.length > 0 ? first.path.join('.') : undefined,
      },
    );
  }
  return parsed.data;
}

/**
 * Fills the spec's categories from a dataset contract: a categorical feature whose contract column
 * lists its allowed `values` is one-hot encoded over exactly those, in that order, whatever the
 * training rows happen to contain. Categories already in the spec win.
 */
export function withContractCategories(
  spec: TrainingSpec,
  contract: {
    columns: readonly {
      name: string;
      type: string;
      values?: readonly (string | number | boolean)[] | undefined;
    }[];
  },
): TrainingSpec {
  const categories: Record<string, string[]> = { ...spec.categories };
  for (const f of spec.features) {
    const col = contract.columns.find((c) => c.name === f);
    if (!col || categories[f] || !col.values) continue;
    if (col.type === 'category' || col.type === 'string' || col.type === 'boolean') {
      categories[f] = col.values.map(String).slice(0, 255);
    }
  }
  return Object.keys(categories).length > 0 ? { ...spec, categories } : spec;
}
