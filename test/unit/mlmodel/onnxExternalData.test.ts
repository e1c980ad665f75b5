/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * Regression: onnxruntime resolves a tensor's external-data `location` against the process's working
 * directory when it loads a model from bytes, so a user's ONNX could read the app's own files back as
 * predictions. Sluice refuses such a model before any session is created.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkModelFolder } from '../../../lib/mlmodel';
import { findExternalData } from '../../../lib/mlmodel/onnxGraph';
import { OnnxModel } from '../../../lib/mlmodel/onnxModel';
import { ProtoWriter } from '../../../lib/onnx/wire';
import { scratch, tensorFeatures, tensorRows } from './support';

type Build = (w: ProtoWriter) => void;

/** A float TensorProto [3, 1]: inline (raw_data) or stored outside the model at `location`. */
const weights =
  (name: string, external?: { location: string; dataLocation?: boolean; entries?: boolean }): Build =>
  (t) => {
    t.packedInts(1, [3, 1]).int(2, 1).string(8, name);
    if (!external) {
      const raw = new Uint8Array(12);
      new DataView(raw.buffer).setFloat32(0, 1.5, true);
      new DataView(raw.buffer).setFloat32(4, -2, true);
      new DataView(raw.buffer).setFloat32(8, 0.25, true);
      t.bytes(9, raw);
      return;
    }
    if (external.entries !== false) {
      t.message(13, (kv) => kv.string(1, 'location').string(2, external.location));
      t.message(13, (kv) => kv.string(1, 'length').string(2, '12'));
    }
    if (external.dataLocation !== false) t.int(14, 1); // EXTERNAL
  };

const valueInfo =
  (name: string, dims: (number | string)[]): Build =>
  (v) =>
    v.string(1, name).message(2, (type) =>
      type.message(1, (tt) =>
        tt.int(1, 1).message(2, (shape) => {
          for (const d of dims)
            shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }),
      ),
    );

/** variable = input · W, W placed by `place` (an initializer, a Constant node, a subgraph, …). */
function model(
  place: 'initializer' | 'constant' | 'constants' | 'sparse' | 'subgraph',
  w: Build,
): Uint8Array {
  const m = new ProtoWriter();
  m.int(1, 8).string(2, 'test').string(3, '1');
  m.message(7, (g) => {
    const matmul: Build = (n) =>
      n.string(1, 'input').string(1, 'W').string(2, 'variable').string(4, 'MatMul');
    if (place === 'initializer') g.message(5, w);
    if (place === 'sparse')
      g.message(15, (s) =>
        s
          .message(1, w)
          .message(2, (i) => i.int(2, 7))
          .packedInts(3, [3, 1]),
      );
    if (place === 'constant' || place === 'constants') {
      g.message(1, (n) =>
        n
          .string(2, 'W')
          .string(3, 'weights')
          .string(4, 'Constant')
          .message(5, (a) =>
            place === 'constant'
              ? a.string(1, 'value').message(5, w).int(20, 4)
              : a.string(1, 'value_list').message(10, w).int(20, 9),
          ),
      );
    }
    if (place === 'subgraph') {
      // If(cond) { then: Constant W } else { Constant W } — the external tensor hides in a branch.
      const branch =
        (name: string): Build =>
        (b) =>
          b
            .message(1, (n) =>
              n
                .string(2, 'Wb')
                .string(4, 'Constant')
                .message(5, (a) => a.string(1, 'value').message(5, w).int(20, 4)),
            )
            .string(2, name)
            .message(12, valueInfo('Wb', [3, 1]));
      g.message(5, (c) =>
        c
          .int(2, 9)
          .string(8, 'cond')
          .bytes(9, new Uint8Array([1])),
      );
      g.message(1, (n) =>
        n
          .string(1, 'cond')
          .string(2, 'W')
          .string(4, 'If')
          .message(5, (a) => a.string(1, 'then_branch').message(6, branch('then')).int(20, 5))
          .message(5, (a) => a.string(1, 'else_branch').message(6, branch('else')).int(20, 5)),
      );
    }
    g.message(1, matmul);
    g.string(2, 'main');
    g.message(11, valueInfo('input', ['N', 3]));
    g.message(12, valueInfo('variable', ['N', 1]));
  });
  m.message(8, (o) => o.int(2, 13));
  return m.finish();
}

const regressor = { features: tensorFeatures, task: 'regression' as const };

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    return { code: (err as { code: string }).code, message: (err as Error).message };
  }
  throw new Error('expected a refusal');
}

let secretDir: string;
let cwd: string;
const location = 'secret.bin';
beforeAll(async () => {
  // A file of the app's in its working directory (where onnxruntime resolves a location for a model
  // loaded from bytes): twelve bytes that, read as W, would give 1.5·a − 2·b + 0.25·c.
  secretDir = await mkdtemp(path.join(tmpdir(), 'sluice-secret-'));
  const secret = new Uint8Array(12);
  new DataView(secret.buffer).setFloat32(0, 1.5, true);
  new DataView(secret.buffer).setFloat32(4, -2, true);
  new DataView(secret.buffer).setFloat32(8, 0.25, true);
  await writeFile(path.join(secretDir, location), secret);
  cwd = process.cwd();
  process.chdir(secretDir);
});
afterAll(async () => {
  process.chdir(cwd);
  await rm(secretDir, { recursive: true, force: true });
});

describe('onnx_external_data: a model whose tensors live outside it is refused', () => {
  it('the same model with W inline loads and scores (the control)', async () => {
    const m = await OnnxModel.load(model('initializer', weights('W')), regressor);
    try {
      const scores = await m.score(tensorRows);
      expect(scores.values?.[0]).toBeCloseTo(1.5 - 2 + 0.5, 5);
    } finally {
      await m.release();
    }
  });

  it('OnnxModel.load refuses an initializer with data_location EXTERNAL, naming it and its location', async () => {
    const f = await codeOf(OnnxModel.load(model('initializer', weights('W', { location })), regressor));
    expect(f.code).toBe('onnx_external_data');
    expect(f.message).toContain('tensor "W" (initializer of graph "main")');
    expect(f.message).toContain(JSON.stringify(location));
  });

  it('checkModelFolder refuses it before any sample is scored', async () => {
    const s = await scratch('regressor-tensor');
    try {
      await writeFile(path.join(s.dir, 'model.onnx'), model('initializer', weights('W', { location })));
      const f = await codeOf(
        checkModelFolder(s.dir, { ...regressor, maxBytes: 1024 * 1024, sample: tensorRows }),
      );
      expect(f.code).toBe('onnx_external_data');
    } finally {
      await s.cleanup();
    }
  });

  it.each([
    [
      'an external_data entry without data_location',
      'initializer',
      { dataLocation: false },
      'initializer of graph "main"',
    ],
    [
      'data_location EXTERNAL without entries',
      'initializer',
      { entries: false },
      'initializer of graph "main"',
    ],
    [
      'a Constant node attribute t',
      'constant',
      {},
      'attribute "value" of node "weights" (Constant) of graph "main"',
    ],
    [
      'a Constant node attribute tensors',
      'constants',
      {},
      'attribute "value_list" of node "weights" (Constant)',
    ],
    ['a sparse initializer', 'sparse', {}, 'sparse initializer of graph "main"'],
    ['an If branch (subgraph)', 'subgraph', {}, 'attribute "then_branch" of node (If) of graph "main"'],
  ] as const)('finds it in %s', (_what, place, flags, where) => {
    const found = findExternalData(model(place, weights('W', { location, ...flags })));
    expect(found).toBeDefined();
    expect(found!.name).toBe('W');
    expect(found!.where).toContain(where);
  });

  it('refuses a model hidden in a subgraph through OnnxModel.load too', async () => {
    const f = await codeOf(OnnxModel.load(model('subgraph', weights('W', { location })), regressor));
    expect(f.code).toBe('onnx_external_data');
  });

  it('finds nothing in self-contained models, and refuses graphs nested past the bound', () => {
    expect(findExternalData(model('initializer', weights('W')))).toBeUndefined();
    expect(findExternalData(model('subgraph', weights('W')))).toBeUndefined();
    let g: Build = (b) => b.string(2, 'leaf');
    for (let i = 0; i < 40; i++) {
      const inner = g;
      g = (b) =>
        b.message(1, (n) =>
          n.string(4, 'If').message(5, (a) => a.string(1, 'then_branch').message(6, inner)),
        );
    }
    const deep = new ProtoWriter().message(7, g).finish();
    expect(() => findExternalData(deep)).toThrow(/nest deeper/);
  });
});
