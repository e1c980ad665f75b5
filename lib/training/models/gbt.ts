import { createPrng } from '../prng';
import type { Prng } from '../prng';
import type { StopSignal } from './common';

/**
 * Gradient-boosted decision trees with histogram split finding (the LightGBM / XGBoost "hist"
 * method): every feature is binned once into at most 255 quantile bins plus a missing bin, a
 * node's split search scans per-bin gradient sums instead of sorted values, and a child's
 * histogram is its parent's minus its sibling's, so only the smaller child is ever scanned.
 * Missing values learn their direction per split.
 */
export interface GbtHyperparameters {
  rounds: number;
  learningRate: number;
  maxDepth: number;
  minSamplesLeaf: number;
  /** L2 penalty on leaf values (lambda). */
  l2: number;
  /** Minimum loss reduction to split (gamma). */
  minSplitGain: number;
  maxBins: number;
  /** Fraction of training rows sampled (without replacement) per round. */
  subsample: number;
  /** Fraction of features sampled per tree. */
  colsample: number;
  /** Stop when the validation loss has not improved for this many rounds (0 = off). */
  earlyStoppingRounds: number;
}

export type GbtObjective = 'regression' | 'binary' | 'multiclass';

/** A tree in flat arrays; leaves have feature -1. `value` already includes the learning rate. */
export interface FlatTree {
  feature: number[];
  threshold: number[];
  /** 1 when rows with a missing value go left. */
  missingLeft: (0 | 1)[];
  left: number[];
  right: number[];
  value: number[];
}

export interface GbtFit {
  baseScore: number[];
  /** Round-major: trees[round * outputs + k]. */
  trees: FlatTree[];
  outputs: number;
  rounds: number;
  bestValidationLoss?: number;
}

interface Binned {
  /** Row-major n × d bin codes; 0 = missing. */
  codes: Uint8Array;
  n: number;
}

/** Quantile bin upper edges of one feature; bin b (1-based) holds edges[b-2] < v <= edges[b-1]. */
export function binEdges(values: Float64Array, rows: ArrayLike<number>, maxBins: number): Float64Array {
  const present: number[] = [];
  for (let i = 0; i < rows.length; i++) {
    const v = values[rows[i]!]!;
    if (!Number.isNaN(v)) present.push(v);
  }
  const sorted = Float64Array.from(present).sort();
  const m = sorted.length;
  const edges: number[] = [];
  if (m === 0) return new Float64Array(0);
  const valueBins = maxBins - 1; // bin 0 is for missing values
  let distinct = 1;
  for (let i = 1; i < m && distinct <= valueBins; i++) if (sorted[i] !== sorted[i - 1]) distinct++;
  if (distinct <= valueBins) {
    for (let i = 1; i < m; i++) {
      if (sorted[i] !== sorted[i - 1]) edges.push(midpoint(sorted[i - 1]!, sorted[i]!));
    }
  } else {
    let last = -Infinity;
    for (let q = 1; q < valueBins; q++) {
      const idx = Math.floor((q * m) / valueBins);
      let hi = idx;
      // cut between two different values at or after the quantile position
      while (hi < m && sorted[hi] === sorted[hi - 1]) hi++;
      if (hi >= m) break;
      const cut = midpoint(sorted[hi - 1]!, sorted[hi]!);
      if (cut > last) {
        edges.push(cut);
        last = cut;
      }
    }
  }
  return Float64Array.from(edges);
}

function midpoint(a: number, b: number): number {
  const mid = a + (b - a) / 2;
  return mid >= b ? a : mid; // keep a <= mid < b even when a and b are adjacent doubles
}

function binOf(edges: Float64Array, v: number): number {
  if (Number.isNaN(v)) return 0;
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (v <= edges[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo + 1;
}

function binRows(
  columns: readonly Float64Array[],
  edges: readonly Float64Array[],
  rows: ArrayLike<number>,
): Binned {
  const d = columns.length;
  const n = rows.length;
  const codes = new Uint8Array(n * d);
  for (let f = 0; f < d; f++) {
    const col = columns[f]!;
    const e = edges[f]!;
    for (let i = 0; i < n; i++) codes[i * d + f] = binOf(e, col[rows[i]!]!);
  }
  return { codes, n };
}

interface Split {
  gain: number;
  feature: number;
  bin: number;
  missingLeft: boolean;
}

const SLOTS = 3; // gradient, hessian, count per bin

export function fitGbt(
  columns: readonly Float64Array[],
  trainRows: Uint32Array,
  target: ArrayLike<number>,
  objective: GbtObjective,
  K: number,
  weights: Float64Array,
  hp: GbtHyperparameters,
  seed: number,
  validationRows?: Uint32Array,
  stop: StopSignal = {},
): GbtFit {
  const d = columns.length;
  const outputs = objective === 'multiclass' ? K : 1;
  const edges = columns.map((c) => binEdges(c, trainRows, hp.maxBins));
  const NB = hp.maxBins + 1;
  const train = binRows(columns, edges, trainRows);
  const valid =
    validationRows && validationRows.length > 0 ? binRows(columns, edges, validationRows) : undefined;
  const n = trainRows.length;
  const prng = createPrng(seed);

  const y = new Float64Array(n);
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = target[trainRows[i]!]!;
    w[i] = weights[trainRows[i]!]!;
  }
  const baseScore = initialScore(objective, y, w, outputs);
  const F = new Float64Array(n * outputs);
  for (let i = 0; i < n; i++) for (let k = 0; k < outputs; k++) F[i * outputs + k] = baseScore[k]!;
  const nv = valid?.n ?? 0;
  const yv = new Float64Array(nv);
  const wv = new Float64Array(nv);
  for (let i = 0; i < nv; i++) {
    yv[i] = target[validationRows![i]!]!;
    wv[i] = weights[validationRows![i]!]!;
  }
  const Fv = new Float64Array(nv * outputs);
  for (let i = 0; i < nv; i++) for (let k = 0; k < outputs; k++) Fv[i * outputs + k] = baseScore[k]!;

  const grad = new Float64Array(n);
  const hess = new Float64Array(n);
  const prob = new Float64Array(n * outputs);
  const trees: FlatTree[] = [];
  const treeBins: Int32Array[] = [];
  let bestLoss = Infinity;
  let bestRounds = 0;
  let sinceBest = 0;
  let rounds = 0;
  const builder = new TreeBuilder(d, NB, hp, edges);

  for (let round = 0; round < hp.rounds; round++) {
    if (objective === 'multiclass') softmaxInto(F, prob, n, outputs);
    const sample = sampleRows(n, hp.subsample, prng);
    const features = sampleFeatures(d, hp.colsample, prng);
    for (let k = 0; k < outputs; k++) {
      gradients(objective, F, prob, y, w, k, outputs, grad, hess);
      const { tree, splitBins } = builder.build(train.codes, sample, grad, hess, features);
      trees.push(tree);
      treeBins.push(splitBins);
      applyTree(tree, splitBins, train.codes, d, n, F, outputs, k);
      if (valid) applyTree(tree, splitBins, valid.codes, d, nv, Fv, outputs, k);
    }
    rounds = round + 1;
    let validationLoss: number | undefined;
    if (valid) {
      validationLoss = meanLoss(objective, Fv, yv, wv, outputs);
      if (validationLoss < bestLoss - 1e-12) {
        bestLoss = validationLoss;
        bestRounds = rounds;
        sinceBest = 0;
      } else {
        sinceBest++;
      }
    }
    stop.onProgress?.({
      fraction: rounds / hp.rounds,
      iteration: rounds,
      loss: meanLoss(objective, F, y, w, outputs),
      ...(validationLoss !== undefined ? { validationLoss } : {}),
    });
    if (valid && hp.earlyStoppingRounds > 0 && sinceBest >= hp.earlyStoppingRounds) break;
    if (stop.shouldStop?.()) break;
  }
  if (valid && hp.earlyStoppingRounds > 0 && bestRounds > 0 && bestRounds < rounds) {
    trees.length = bestRounds * outputs;
    rounds = bestRounds;
  }
  return { baseScore, trees, outputs, rounds, ...(valid ? { bestValidationLoss: bestLoss } : {}) };
}

function initialScore(objective: GbtObjective, y: Float64Array, w: Float64Array, outputs: number): number[] {
  let wSum = 0;
  for (let i = 0; i < y.length; i++) wSum += w[i]!;
  if (objective === 'regression') {
    let s = 0;
    for (let i = 0; i < y.length; i++) s += w[i]! * y[i]!;
    return [wSum > 0 ? s / wSum : 0];
  }
  const counts = new Float64Array(Math.max(outputs, 2));
  for (let i = 0; i < y.length; i++) counts[y[i]!]! += w[i]!;
  const clip = (p: number) => Math.min(1 - 1e-6, Math.max(1e-6, p));
  if (objective === 'binary') {
    const p = clip(counts[1]! / wSum);
    return [Math.log(p / (1 - p))];
  }
  return Array.from(counts, (c) => Math.log(clip(c / wSum)));
}

function softmaxInto(F: Float64Array, out: Float64Array, n: number, K: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * K;
    let max = -Infinity;
    for (let k = 0; k < K; k++) if (F[o + k]! > max) max = F[o + k]!;
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const e = Math.exp(F[o + k]! - max);
      out[o + k] = e;
      sum += e;
    }
    for (let k = 0; k < K; k++) out[o + k]! /= sum;
  }
}

function gradients(
  objective: GbtObjective,
  F: Float64Array,
  prob: Float64Array,
  y: Float64Array,
  w: Float64Array,
  k: number,
  K: number,
  grad: Float64Array,
  hess: Float64Array,
): void {
  const n = y.length;
  if (objective === 'regression') {
    for (let i = 0; i < n; i++) {
      grad[i] = w[i]! * (F[i]! - y[i]!);
      hess[i] = w[i]!;
    }
  } else if (objective === 'binary') {
    for (let i = 0; i < n; i++) {
      const p = sigmoid(F[i]!);
      grad[i] = w[i]! * (p - y[i]!);
      hess[i] = w[i]! * Math.max(p * (1 - p), 1e-16);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const p = prob[i * K + k]!;
      grad[i] = w[i]! * (p - (y[i] === k ? 1 : 0));
      hess[i] = w[i]! * Math.max(p * (1 - p), 1e-16);
    }
  }
}

function sigmoid(s: number): number {
  return s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s));
}

function meanLoss(
  objective: GbtObjective,
  F: Float64Array,
  y: Float64Array,
  w: Float64Array,
  K: number,
): number {
  let s = 0;
  let wSum = 0;
  const n = y.length;
  for (let i = 0; i < n; i++) {
    const wi = w[i]!;
    wSum += wi;
    if (objective === 'regression') {
      const e = F[i]! - y[i]!;
      s += wi * e * e;
    } else if (objective === 'binary') {
      const z = F[i]!;
      const softplus = z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
      s += wi * (softplus - y[i]! * z);
    } else {
      const o = i * K;
      let max = -Infinity;
      for (let k = 0; k < K; k++) if (F[o + k]! > max) max = F[o + k]!;
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(F[o + k]! - max);
      s += wi * (Math.log(sum) + max - F[o + y[i]!]!);
    }
  }
  return wSum > 0 ? s / wSum : 0;
}

function sampleRows(n: number, fraction: number, prng: Prng): Uint32Array {
  if (fraction >= 1) {
    const all = new Uint32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    return all;
  }
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (prng.next() < fraction) keep.push(i);
  return Uint32Array.from(keep.length > 0 ? keep : [0]);
}

function sampleFeatures(d: number, fraction: number, prng: Prng): Int32Array {
  const all = Int32Array.from({ length: d }, (_, i) => i);
  if (fraction >= 1) return all;
  const m = Math.max(1, Math.round(fraction * d));
  for (let i = 0; i < m; i++) {
    const j = i + prng.nextInt(d - i);
    const t = all[i]!;
    all[i] = all[j]!;
    all[j] = t;
  }
  return all.slice(0, m).sort();
}

function applyTree(
  tree: FlatTree,
  splitBins: Int32Array,
  codes: Uint8Array,
  d: number,
  n: number,
  F: Float64Array,
  K: number,
  k: number,
): void {
  const { feature, missingLeft, left, right, value } = tree;
  for (let i = 0; i < n; i++) {
    let node = 0;
    const base = i * d;
    while (feature[node]! >= 0) {
      const b = codes[base + feature[node]!]!;
      const goLeft = b === 0 ? missingLeft[node] === 1 : b <= splitBins[node]!;
      node = goLeft ? left[node]! : right[node]!;
    }
    F[i * K + k]! += value[node]!;
  }
}

class TreeBuilder {
  private readonly pool: Float64Array[] = [];
  private rows = new Uint32Array(0);
  private scratch = new Uint32Array(0);
  /** Gradient and hessian sums of the left side of the last partition. */
  private leftG = 0;
  private leftH = 0;

  constructor(
    private readonly d: number,
    private readonly NB: number,
    private readonly hp: GbtHyperparameters,
    private readonly edges: readonly Float64Array[],
  ) {}

  private hist(): Float64Array {
    const h = this.pool.pop();
    if (h) {
      h.fill(0);
      return h;
    }
    return new Float64Array(this.d * this.NB * SLOTS);
  }

  private fill(
    h: Float64Array,
    codes: Uint8Array,
    start: number,
    end: number,
    grad: Float64Array,
    hess: Float64Array,
    features: Int32Array,
  ): void {
    const d = this.d;
    const NB = this.NB;
    const rows = this.rows;
    const m = features.length;
    for (let t = start; t < end; t++) {
      const r = rows[t]!;
      const g = grad[r]!;
      const hh = hess[r]!;
      const base = r * d;
      for (let q = 0; q < m; q++) {
        const f = features[q]!;
        const o = (f * NB + codes[base + f]!) * SLOTS;
        h[o]! += g;
        h[o + 1]! += hh;
        h[o + 2]! += 1;
      }
    }
  }

  private bestSplit(
    h: Float64Array,
    G: number,
    H: number,
    count: number,
    features: Int32Array,
  ): Split | undefined {
    const { l2, minSamplesLeaf, minSplitGain } = this.hp;
    const NB = this.NB;
    const parentScore = (G * G) / (H + l2);
    let best: Split | undefined;
    for (let q = 0; q < features.length; q++) {
      const f = features[q]!;
      const nb = this.edges[f]!.length + 1; // value bins 1..nb
      const base = f * NB * SLOTS;
      const mg = h[base]!;
      const mh = h[base + 1]!;
      const mc = h[base + 2]!;
      let gl = 0;
      let hl = 0;
      let cl = 0;
      for (let b = 1; b < nb; b++) {
        const o = base + b * SLOTS;
        gl += h[o]!;
        hl += h[o + 1]!;
        cl += h[o + 2]!;
        for (let side = 0; side < 2; side++) {
          const missingLeft = side === 0;
          const GL = missingLeft ? gl + mg : gl;
          const HL = missingLeft ? hl + mh : hl;
          const CL = missingLeft ? cl + mc : cl;
          const CR = count - CL;
          if (CL < minSamplesLeaf || CR < minSamplesLeaf) continue;
          const GR = G - GL;
          const HR = H - HL;
          if (HL < 1e-10 || HR < 1e-10) continue;
          const gain = 0.5 * ((GL * GL) / (HL + l2) + (GR * GR) / (HR + l2) - parentScore) - minSplitGain;
          if (gain > 1e-12 && (!best || gain > best.gain)) best = { gain, feature: f, bin: b, missingLeft };
          if (mc === 0) break; // without missing values both sides give the same split
        }
      }
    }
    return best;
  }

  build(
    codes: Uint8Array,
    sample: Uint32Array,
    grad: Float64Array,
    hess: Float64Array,
    features: Int32Array,
  ): { tree: FlatTree; splitBins: Int32Array } {
    const { maxDepth, learningRate, l2 } = this.hp;
    if (this.rows.length < sample.length) {
      this.rows = new Uint32Array(sample.length);
      this.scratch = new Uint32Array(sample.length);
    }
    this.rows.set(sample);
    const tree: FlatTree = { feature: [], threshold: [], missingLeft: [], left: [], right: [], value: [] };
    const splitBins: number[] = [];
    const addNode = (): number => {
      tree.feature.push(-1);
      tree.threshold.push(0);
      tree.missingLeft.push(0);
      tree.left.push(-1);
      tree.right.push(-1);
      tree.value.push(0);
      splitBins.push(0);
      return tree.feature.length - 1;
    };
    interface Pending {
      node: number;
      start: number;
      end: number;
      hist: Float64Array | undefined;
      G: number;
      H: number;
    }
    const rootHist = this.hist();
    this.fill(rootHist, codes, 0, sample.length, grad, hess, features);
    let G = 0;
    let H = 0;
    for (let t = 0; t < sample.length; t++) {
      G += grad[sample[t]!]!;
      H += hess[sample[t]!]!;
    }
    let level: Pending[] = [{ node: addNode(), start: 0, end: sample.length, hist: rootHist, G, H }];
    for (let depth = 0; level.length > 0; depth++) {
      const next: Pending[] = [];
      for (const p of level) {
        const split =
          depth < maxDepth && p.hist
            ? this.bestSplit(p.hist, p.G, p.H, p.end - p.start, features)
            : undefined;
        if (!split || !p.hist) {
          tree.value[p.node] = (-p.G / (p.H + l2)) * learningRate;
          if (p.hist) this.pool.push(p.hist);
          continue;
        }
        const mid = this.partition(codes, p.start, p.end, split, grad, hess);
        const leftNode = addNode();
        const rightNode = addNode();
        tree.feature[p.node] = split.feature;
        tree.threshold[p.node] = this.edges[split.feature]![split.bin - 1]!;
        tree.missingLeft[p.node] = split.missingLeft ? 1 : 0;
        tree.left[p.node] = leftNode;
        tree.right[p.node] = rightNode;
        splitBins[p.node] = split.bin;
        const GL = this.leftG;
        const HL = this.leftH;
        const nl = mid - p.start;
        const nr = p.end - mid;
        // Children at the depth limit, or too small to split again, never need a histogram.
        const canSplit = (rows: number) => depth + 1 < maxDepth && rows >= 2 * this.hp.minSamplesLeaf;
        if (!canSplit(nl) && !canSplit(nr)) {
          this.pool.push(p.hist);
          next.push({ node: leftNode, start: p.start, end: mid, hist: undefined, G: GL, H: HL });
          next.push({ node: rightNode, start: mid, end: p.end, hist: undefined, G: p.G - GL, H: p.H - HL });
          continue;
        }
        const leftSmaller = nl <= nr;
        const small = this.hist();
        if (leftSmaller) this.fill(small, codes, p.start, mid, grad, hess, features);
        else this.fill(small, codes, mid, p.end, grad, hess, features);
        const large = p.hist;
        for (let i = 0; i < large.length; i++) large[i]! -= small[i]!;
        const leftHist = leftSmaller ? small : large;
        const rightHist = leftSmaller ? large : small;
        next.push({ node: leftNode, start: p.start, end: mid, hist: leftHist, G: GL, H: HL });
        next.push({ node: rightNode, start: mid, end: p.end, hist: rightHist, G: p.G - GL, H: p.H - HL });
      }
      level = next;
    }
    return { tree, splitBins: Int32Array.from(splitBins) };
  }

  /** Stable partition of rows[start, end) by the split; returns the first right-hand index. */
  private partition(
    codes: Uint8Array,
    start: number,
    end: number,
    split: Split,
    grad: Float64Array,
    hess: Float64Array,
  ): number {
    const d = this.d;
    const rows = this.rows;
    const scratch = this.scratch;
    const f = split.feature;
    const bin = split.bin;
    const missingLeft = split.missingLeft;
    let l = start;
    let r = 0;
    let gl = 0;
    let hl = 0;
    for (let t = start; t < end; t++) {
      const row = rows[t]!;
      const b = codes[row * d + f]!;
      if (b === 0 ? missingLeft : b <= bin) {
        rows[l++] = row;
        gl += grad[row]!;
        hl += hess[row]!;
      } else {
        scratch[r++] = row;
      }
    }
    rows.set(scratch.subarray(0, r), l);
    this.leftG = gl;
    this.leftH = hl;
    return l;
  }
}

/** All trees of an ensemble in shared typed arrays (child indexes absolute), for fast scoring. */
export interface CompiledEnsemble {
  roots: Int32Array;
  feature: Int32Array;
  threshold: Float64Array;
  missingLeft: Uint8Array;
  left: Int32Array;
  right: Int32Array;
  value: Float64Array;
}

export function compileEnsemble(trees: readonly FlatTree[]): CompiledEnsemble {
  const total = trees.reduce((s, t) => s + t.feature.length, 0);
  const c: CompiledEnsemble = {
    roots: new Int32Array(trees.length),
    feature: new Int32Array(total),
    threshold: new Float64Array(total),
    missingLeft: new Uint8Array(total),
    left: new Int32Array(total),
    right: new Int32Array(total),
    value: new Float64Array(total),
  };
  let offset = 0;
  trees.forEach((t, ti) => {
    c.roots[ti] = offset;
    for (let j = 0; j < t.feature.length; j++) {
      const o = offset + j;
      c.feature[o] = t.feature[j]!;
      c.threshold[o] = t.threshold[j]!;
      c.missingLeft[o] = t.missingLeft[j]!;
      c.left[o] = t.left[j]! + offset;
      c.right[o] = t.right[j]! + offset;
      c.value[o] = t.value[j]!;
    }
    offset += t.feature.length;
  });
  return c;
}

/** Raw scores (n × outputs, row-major) of a compiled ensemble on column-major raw features. */
export function gbtScores(
  columns: readonly Float64Array[],
  n: number,
  baseScore: readonly number[],
  ensemble: CompiledEnsemble,
  outputs: number,
): Float64Array {
  const d = columns.length;
  // Row-major copy: a row's features stay in cache while every tree visits them.
  const X = new Float64Array(n * d);
  for (let f = 0; f < d; f++) {
    const col = columns[f]!;
    for (let i = 0; i < n; i++) X[i * d + f] = col[i]!;
  }
  const { roots, feature, threshold, missingLeft, left, right, value } = ensemble;
  const T = roots.length;
  const F = new Float64Array(n * outputs);
  for (let i = 0; i < n; i++) {
    const base = i * d;
    const o = i * outputs;
    for (let k = 0; k < outputs; k++) F[o + k] = baseScore[k]!;
    for (let t = 0, k = 0; t < T; t++) {
      let node = roots[t]!;
      let f = feature[node]!;
      while (f >= 0) {
        const v = X[base + f]!;
        node = v <= threshold[node]! || (v !== v && missingLeft[node] === 1) ? left[node]! : right[node]!;
        f = feature[node]!;
      }
      F[o + k]! += value[node]!;
      if (++k === outputs) k = 0;
    }
  }
  return F;
}

/** Turns raw scores into class probabilities (n × K) or leaves regression values as they are. */
export function scoresToProba(F: Float64Array, n: number, objective: GbtObjective, K: number): Float64Array {
  if (objective === 'regression') return F;
  if (objective === 'binary') {
    const out = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) {
      const p = sigmoid(F[i]!);
      out[2 * i] = 1 - p;
      out[2 * i + 1] = p;
    }
    return out;
  }
  const out = new Float64Array(n * K);
  softmaxInto(F, out, n, K);
  return out;
}
