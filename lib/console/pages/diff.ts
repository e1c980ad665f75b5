/**
 * A field-level diff of two JSON documents (two versions of a pipeline definition), for people:
 * one row per leaf that was added, removed or changed, named by its path (`training.params.l2`,
 * `dataset.columns[age].max`). Arrays of objects with a `name` are matched by name, so inserting a
 * column shows as one added column, not every later column changed.
 */

export type DiffChange = 'added' | 'removed' | 'changed';

export interface DiffRow {
  path: string;
  change: DiffChange;
  before?: unknown;
  after?: unknown;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const named = (v: unknown): v is { name: string }[] =>
  Array.isArray(v) &&
  v.length > 0 &&
  v.every((x) => isObject(x) && typeof x.name === 'string') &&
  new Set(v.map((x) => (x as { name: string }).name)).size === v.length;

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** Every difference between `before` and `after`, in document order (keys of `before` first). */
export function diffJson(before: unknown, after: unknown, path = ''): DiffRow[] {
  if (before === undefined && after === undefined) return [];
  if (before === undefined) return [{ path: path || '(root)', change: 'added', after }];
  if (after === undefined) return [{ path: path || '(root)', change: 'removed', before }];
  if (isObject(before) && isObject(after)) {
    const keys = [...Object.keys(before), ...Object.keys(after).filter((k) => !(k in before))];
    return keys.flatMap((k) => diffJson(before[k], after[k], join(path, k)));
  }
  if (named(before) && named(after)) {
    const a = new Map(before.map((x) => [x.name, x]));
    const b = new Map(after.map((x) => [x.name, x]));
    const names = [...a.keys(), ...[...b.keys()].filter((n) => !a.has(n))];
    const rows = names.flatMap((n) => diffJson(a.get(n), b.get(n), `${path}[${n}]`));
    const orderBefore = before.map((x) => x.name).filter((n) => b.has(n));
    const orderAfter = after.map((x) => x.name).filter((n) => a.has(n));
    if (orderBefore.join('\u0000') !== orderAfter.join('\u0000')) {
      rows.push({ path: `${path} (order)`, change: 'changed', before: orderBefore, after: orderAfter });
    }
    return rows;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const scalars = [...before, ...after].every((x) => !isObject(x) && !Array.isArray(x));
    if (scalars) {
      return JSON.stringify(before) === JSON.stringify(after)
        ? []
        : [{ path: path || '(root)', change: 'changed', before, after }];
    }
    const n = Math.max(before.length, after.length);
    const rows: DiffRow[] = [];
    for (let i = 0; i < n; i++) rows.push(...diffJson(before[i], after[i], `${path}[${i}]`));
    return rows;
  }
  return JSON.stringify(before) === JSON.stringify(after)
    ? []
    : [{ path: path || '(root)', change: 'changed', before, after }];
}

/** A value as a short line for a diff cell. */
export function diffValue(v: unknown): string {
  if (v === undefined) return '';
  const text = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
  return text.length > 300 ? `${text.slice(0, 297)}…` : text;
}
