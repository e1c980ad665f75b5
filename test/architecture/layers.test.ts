import path from 'node:path';
import type { LayerRules, Violation } from './importGraph';
import { buildImportGraph, checkLayers, formatViolations } from './importGraph';
import pure from './pure-modules.json';

/**
 * The layer order of docs/architecture.md, enforced. A failure prints every offending import edge
 * (or cycle, or the chain by which an orchestrator reaches something impure); fix the import, or,
 * if the architecture really changed, change this table and docs/architecture.md together.
 */

const root = path.resolve(__dirname, '../..');

/** Every folder of the app whose `.ts` files are checked (a missing folder is simply empty). */
const scanned = [
  'functions',
  'activities',
  'orchestrators',
  'lib',
  'devhost',
  'cli',
  'bench',
  'scripts',
  'app',
  'worker',
];

const rules: LayerRules = {
  folders: {
    // Triggers and orchestrations stand on lib/ only (app/: the per-process services memo, if any).
    functions: ['lib', 'app'],
    activities: ['lib', 'app'],
    orchestrators: ['lib'],
    app: ['lib'],
    // The training worker is its own process built from lib/.
    worker: ['lib'],
    // lib/ never imports a trigger, an orchestrator, devhost or the CLI.
    lib: [],
    // devhost is a generic Functions + Durable host: it knows nothing of lib/ or the app.
    devhost: [],
    cli: ['lib', 'devhost'],
    bench: '*',
    scripts: '*',
  },
  forbiddenPackages: {
    // lib/ is the domain and its adapters: no Functions programming model in it.
    lib: ['@azure/functions', 'durable-functions'],
  },
  /**
   * The modules of lib/, bottom to top. A module may import only modules on an earlier line;
   * modules on the same line do not import each other.
   */
  libOrder: [
    // Schemas that cross a Durable boundary: zod and each other only.
    ['contracts'],
    ['errors', 'resources'],
    ['keyring'],
    ['config'],
    // Adapters to the outside: Blob/Cosmos/Table, HTTP problems, notification delivery.
    ['storage', 'http', 'notify'],
    // The hash-chained audit log and its anchors: every store that records governance events
    // stands above it.
    ['audit'],
    // The domain, each module standing on the ones before it.
    ['data'],
    // The ONNX protobuf wire format (write and read): pure, imports nothing of lib/.
    ['onnx'],
    // Model metrics on typed arrays; MLflow model folders and ONNX scoring.
    ['metrics', 'mlmodel'],
    ['training'],
    // Any model (legacy JSON, ONNX folder, python_function folder) as one Scorer.
    ['scoring'],
    ['evaluation'],
    // Model versions and aliases; rollout state, traffic stats and guard arithmetic (docs/rollout.md).
    ['registry', 'rollout'],
    ['serving'],
    ['approval'],
    ['runs'],
    // Pipeline definitions; deployment checks answered to Azure DevOps and GitHub; the MLflow mirror
    // of run documents (it stands on runs).
    ['pipelines', 'checks', 'mlflow'],
    // Live-traffic monitoring: sampled predict requests, live drift, feedback and retraining
    // proposals (docs/monitoring.md); it stands on pipelines, runs, approval tokens and rollout stats.
    ['monitoring'],
    // The evidence pack of a model version: pipeline, run, reports, approvals, deployment, audit.
    ['evidence'],
    // The console's shell and pages (docs/console.md): server-rendered HTML over every module below.
    ['console'],
    // The composition root: builds every store, client and backend from the config.
    ['services'],
  ],
  pureRoot: 'orchestrators',
  pureModules: pure.modules,
  purePackages: pure.packages,
};

const only = (violations: readonly Violation[], ...kinds: Violation['rule'][]): string =>
  formatViolations(violations.filter((v) => kinds.includes(v.rule)));

describe('the import graph of the app', () => {
  const graph = buildImportGraph(root, scanned);
  const violations = checkLayers(graph, rules);

  it('is read from every folder of the app', () => {
    expect(graph.files).toEqual(
      expect.arrayContaining([
        'functions/startRun.ts',
        'activities/deployModel.ts',
        'orchestrators/trainingPipeline.ts',
        'lib/contracts/activity.ts',
        'devhost/host.ts',
        'cli/sluice.ts',
      ]),
    );
    expect(graph.edges.get('orchestrators/trainingPipeline.ts')?.length).toBeGreaterThan(0);
  });

  it('has no import cycles', () => {
    expect(only(violations, 'cycle')).toBe('');
  });

  it('keeps the folder order of DESIGN.md (triggers on lib/, lib/ on nothing, devhost on nothing)', () => {
    expect(only(violations, 'folder', 'package')).toBe('');
  });

  it('has lib/ modules import only modules below them in the layer order', () => {
    expect(only(violations, 'layer')).toBe('');
  });

  it('lets orchestrators reach only pure modules: no node:*, no @azure/*, no I/O', () => {
    expect(only(violations, 'purity')).toBe('');
  });

  it('keeps its own lists honest (no entries naming missing files)', () => {
    expect(only(violations, 'stale')).toBe('');
  });

  it('has contracts that import only zod and each other', () => {
    const outside = graph.files
      .filter((f) => f.startsWith('lib/contracts/'))
      .flatMap((f) => graph.edges.get(f) ?? [])
      .filter((e) => (e.external ? e.to !== 'zod' : !e.to.startsWith('lib/contracts/')))
      .map((e) => `${e.from} → ${e.to}`);
    expect(outside).toEqual([]);
  });
});

describe('the import-graph checker', () => {
  // A small tree with one of each forbidden import (kept out of tsc, eslint and jest collection).
  const bad = buildImportGraph(path.join(__dirname, 'fixtures', 'bad'), scanned);
  const fixtureRules: LayerRules = {
    ...rules,
    pureModules: [
      'lib/contracts/',
      'lib/approval/policy.ts',
      'lib/approval/record.ts',
      'lib/approval/snapshot.ts',
    ],
  };
  const found = checkLayers(bad, fixtureRules)
    .map((v) => `${v.rule}: ${v.path.join(' → ')}`)
    .sort();

  it('reports an import cycle with its path (approval/policy ↔ approval/record, as before issue 14)', () => {
    expect(found).toContain(
      'cycle: lib/approval/policy.ts → lib/approval/record.ts → lib/approval/policy.ts',
    );
  });

  it('reports a contract importing a domain module (contracts/training → training/spec)', () => {
    expect(found).toContain('layer: lib/contracts/training.ts → lib/training/spec.ts');
  });

  it('reports an orchestrator reaching node:fs through a helper, with the chain', () => {
    expect(found).toContain('purity: orchestrators/trainingPipeline.ts → lib/runs/helper.ts');
    expect(found).toContain('purity: orchestrators/trainingPipeline.ts → lib/runs/helper.ts → node:fs');
  });

  it('reports a pure-listed helper that reaches @azure/* (approval/snapshot → approval/store)', () => {
    expect(found).toContain(
      'purity: orchestrators/approvalGate.ts → lib/approval/snapshot.ts → lib/approval/store.ts',
    );
    expect(found).toContain(
      'purity: orchestrators/approvalGate.ts → lib/approval/snapshot.ts → lib/approval/store.ts → @azure/cosmos',
    );
  });

  it('reports devhost importing lib/, and lib/ importing an activity or the Functions SDK', () => {
    expect(found).toContain('folder: devhost/host.ts → lib/config.ts');
    expect(found).toContain('folder: lib/runs/launch.ts → activities/beginRun.ts');
    expect(found).toContain('package: lib/runs/launch.ts → @azure/functions');
  });

  it('reports nothing else: the clean files of the fixture pass', () => {
    expect(found).toEqual([
      'cycle: lib/approval/policy.ts → lib/approval/record.ts → lib/approval/policy.ts',
      'folder: devhost/host.ts → lib/config.ts',
      'folder: lib/runs/launch.ts → activities/beginRun.ts',
      'layer: lib/contracts/training.ts → lib/training/spec.ts',
      'package: lib/runs/launch.ts → @azure/functions',
      'purity: orchestrators/approvalGate.ts → lib/approval/snapshot.ts → lib/approval/store.ts',
      'purity: orchestrators/approvalGate.ts → lib/approval/snapshot.ts → lib/approval/store.ts → @azure/cosmos',
      'purity: orchestrators/trainingPipeline.ts → lib/runs/helper.ts',
      'purity: orchestrators/trainingPipeline.ts → lib/runs/helper.ts → node:fs',
    ]);
  });

  it('prints each violation as one line naming the files and the tiers', () => {
    expect(formatViolations(checkLayers(bad, fixtureRules))).toMatch(
      /\[layer\] upward import, lib\/contracts \(tier 0\) → lib\/training \(tier \d+\): lib\/contracts\/training\.ts → lib\/training\/spec\.ts/,
    );
  });
});
