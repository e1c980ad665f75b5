/**
 * Field-by-field differences between two pipeline definitions (JSON values), for
 * `sluice pipelines plan`: what applying a folder of definitions would change on the server. Pure.
 */

/** One changed leaf: `path` as the API names fields (`training.features.2`, `approval.timeout`). */
export interface FieldChange {
  path: string;
  kind: 'added' | 'removed' | 'changed';
  /** The server's value (absent when added). */
  old?: unknown;
  /** The folder's value (absent when removed). */
  new?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Arrays of objects are compared element by element (a dataset's columns); others as one value. */
const isArrayOfObjects = (v: unknown): v is Record<string, unknown>[] =>
  Array.isArray(v) && v.length > 0 && v.every(isObject);

/**
 * The changes that turn `before` (the deployed definition) into `after` (the folder's), in a
 * stable order: object keys sorted, array elements by index. Equal values give `[]`. Keys whose
 * value is `undefined` count as absent, as they do once the definition is JSON.
 */
export function diffDefinitions(before: unknown, after: unknown): FieldChange[] {
  const out: FieldChange[] = [];
  walk(before, after, [], out);
  return out;
}

function walk(a: unknown, b: unknown, path: string[], out: FieldChange[]): void {
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const [x, y] = [a[k], b[k]];
      const p = [...path, k];
      if (x === undefined && y === undefined) continue;
      if (x === undefined) out.push({ path: p.join('.'), kind: 'added', new: y });
      else if (y === undefined) out.push({ path: p.join('.'), kind: 'removed', old: x });
      else walk(x, y, p, out);
    }
    return;
  }
  if (isArrayOfObjects(a) && isArrayOfObjects(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const p = [...path, String(i)];
      if (i >= a.length) out.push({ path: p.join('.'), kind: 'added', new: b[i] });
      else if (i >= b.length) out.push({ path: p.join('.'), kind: 'removed', old: a[i] });
      else walk(a[i], b[i], p, out);
    }
    return;
  }
  if (!sameJson(a, b)) out.push({ path: path.join('.') || '(definition)', kind: 'changed', old: a, new: b });
}

/** Deep equality of JSON values (object key order does not matter). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => sameJson(a[k], b[k]));
  }
  return false;
}

/** A value for a one-line diff: JSON, cut to `max` characters with an ellipsis. */
export function shortJson(v: unknown, max = 60): string {
  const s = JSON.stringify(v) ?? 'undefined';
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
