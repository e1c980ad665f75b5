/**
 * Structural checks for the JSON headers of Sluice's own binary forms (columnar data, reference
 * profiles). They run in the validation worker, whose start-up is on the critical path of every
 * validation: loading zod there was two thirds of it, so these few fields are checked by hand.
 * Each failure names the path of the field that is wrong.
 */
export class HeaderCheck {
  constructor(private readonly fail: (message: string) => Error) {}

  /** The error for a field that is wrong in a way the helpers below do not cover. */
  error(path: string, expected: string): Error {
    return this.fail(`${path}: expected ${expected}`);
  }

  object(v: unknown, path: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw this.fail(`${path}: expected an object`);
    return v as Record<string, unknown>;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) throw this.fail(`${path}: expected an array`);
    return v;
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') throw this.fail(`${path}: expected a string`);
    return v;
  }

  /** An integer, at least `min`. */
  int(v: unknown, path: string, min = -Infinity): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      throw this.fail(`${path}: expected an integer${min > -Infinity ? ` ≥ ${min}` : ''}`);
    return v;
  }

  oneOf<T extends string | number>(v: unknown, path: string, allowed: readonly T[]): T {
    if (!allowed.includes(v as T)) throw this.fail(`${path}: expected one of ${allowed.join(', ')}`);
    return v as T;
  }

  strings(v: unknown, path: string): string[] {
    return this.array(v, path).map((x, i) => this.string(x, `${path}[${i}]`));
  }

  ints(v: unknown, path: string, min = -Infinity): number[] {
    return this.array(v, path).map((x, i) => this.int(x, `${path}[${i}]`, min));
  }

  /** Parse-issue summaries (count, first rows, examples) as the columnar form stores them. */
  issues(v: unknown, path: string): { count: number; firstRows: number[]; examples: string[] } {
    const o = this.object(v, path);
    return {
      count: this.int(o.count, `${path}.count`),
      firstRows: this.ints(o.firstRows, `${path}.firstRows`),
      examples: this.strings(o.examples, `${path}.examples`),
    };
  }
}

export const COLUMN_TYPES = ['number', 'integer', 'datetime', 'boolean', 'category', 'string'] as const;
