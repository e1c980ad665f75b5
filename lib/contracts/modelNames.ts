import { z } from 'zod';

/**
 * Names in the model registry: a model (Cosmos partition key of its documents) and an alias
 * (`production`, `staging`). Both travel in activity inputs (evaluateModel, registerModel), so they
 * live here with no I/O.
 */
export const modelNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/,
    'letters, digits, ".", "_" or "-", starting with a letter or digit',
  );
export const aliasNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,39}$/, 'lower-case letters, digits or "-", starting with a letter');
