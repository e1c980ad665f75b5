import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FeatureSpec } from '../../../lib/mlmodel';

/** The committed model folders (test/fixtures/mlmodel/make.py writes them). */
export const fixtures = path.resolve(__dirname, '../../fixtures/mlmodel');

export const perFeature: FeatureSpec[] = [
  { name: 'x1', kind: 'number' },
  { name: 'x2', kind: 'number' },
  { name: 'color', kind: 'string' },
];
export const tensorFeatures: FeatureSpec[] = [
  { name: 'a', kind: 'number' },
  { name: 'b', kind: 'number' },
  { name: 'c', kind: 'number' },
];
export const classes = ['no', 'yes'];

export const perFeatureRows = [
  { x1: 1, x2: 1, color: 'red' },
  { x1: 2, x2: 2, color: 'zz' },
  { x1: -3, x2: 0.5, color: 'blue' },
  { x1: 0.25, x2: -4, color: 'green' },
];
export const tensorRows = [
  { a: 1, b: 1, c: 2 },
  { a: 2, b: 2, c: -1 },
  { a: -3, b: 0.5, c: 0 },
];

const colorCode = (c: string): number => ({ blue: 0, green: 1, red: 2 })[c] ?? -1;

/** The fixtures' classifier by hand: scores = W·[x1, x2, code] + b, softmax over (no, yes). */
export function expectedClassifier(features: [number, number, number]): {
  label: string;
  p: [number, number];
} {
  const [a, b, c] = features;
  const s0 = -0.5 * a + 0.25 * b - 0.3 * c + 0.1;
  const s1 = 0.5 * a - 0.25 * b + 0.3 * c - 0.1;
  const p1 = 1 / (1 + Math.exp(s0 - s1));
  return { label: p1 > 0.5 ? 'yes' : 'no', p: [1 - p1, p1] };
}

/** The fixtures' regressor by hand: 1.5·a − 2·b + 0.25·c + 0.5. */
export const expectedRegressor = ([a, b, c]: [number, number, number]): number =>
  1.5 * a - 2 * b + 0.25 * c + 0.5;

export const rowFeatures = (r: { x1: number; x2: number; color: string }): [number, number, number] => [
  r.x1,
  r.x2,
  colorCode(r.color),
];

/** A scratch copy of one fixture folder (or an empty folder), removed by `cleanup`. */
export async function scratch(fixture?: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), 'sluice-mlmodel-'));
  const dir = path.join(root, 'model');
  if (fixture) await cp(path.join(fixtures, fixture), dir, { recursive: true });
  return { dir, cleanup: () => rm(root, { recursive: true, force: true }) };
}
