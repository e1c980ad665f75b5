#!/usr/bin/env node
/**
 * `npm run demo`: Sluice's main job in one command, through the HTTP API only.
 *
 * Registers the sample pipeline (examples/pipelines/wages.json), runs it on the shipped CPS 1985
 * wages data, shows the steps as they happen, prints the approval link from the local outbox and
 * waits for a person to decide in the browser (`--approve`: the demo opens the page and submits
 * its form as the reviewer), then shows the deployment, scores a few rows and prints a summary.
 * A second run on drifted data shows the validation gate stopping it.
 *
 * It talks to a running Sluice (`--url`, or http://localhost:7071 when `npm start` is up), or
 * starts devhost itself on a free port with a fresh data folder.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseErrorMessage } from './args';
import type { ContainerClient } from '@azure/storage-blob';
import { runningDevhostUrl, startLocalSluice, repoRoot, type LocalSluice } from './localSluice';
import { decideThroughPage, localBlobService, localOutbox, waitForMessage } from './reviewer';
import { api, fmtMs, watchRun, type Ctx, type RunView } from './sluice';

const USAGE = `Usage: npm run demo -- [options]

  --url URL        use the Sluice at URL (env SLUICE_URL; default: the devhost \`npm start\` runs,
                   on whatever port it was given, or http://localhost:7071 if it answers;
                   otherwise the demo starts devhost itself on a free port)
  --start          always start a fresh devhost (new data folder), even if one is running
  --data-dir DIR   data folder for the devhost the demo starts (default: a temporary folder)
  --approve        act as reviewer@example.com: open the approval page and press Approve
  --training DIR   train with your own code instead of the built-in ridge regression: DIR is a
                   sluice.job/v1 job folder whose job.json names the command (e.g.
                   examples/training/sklearn); the baseline in production stays built-in
  --key KEY        function key (env SLUICE_KEY) when the host enforces keys
  --storage CONN   outbox storage connection string (default: the local Azurite of the host)
  -h, --help       this text

Examples:
  npm run demo                                  # a running npm start, or a devhost of its own
  npm run demo -- --url http://localhost:7072   # the Sluice at that URL (e.g. npm start -- --port 7072)
  npm run demo -- --approve                     # also approve through the real approval page`;

const REVIEWER = 'reviewer@example.com';
const ALGORITHMS: Record<string, string> = {
  ridge: 'ridge regression',
  logistic_regression: 'logistic regression',
  gradient_boosting: 'gradient-boosted trees',
};

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = paint('1');
const dim = paint('2');
const green = paint('32');
const red = paint('31');
const yellow = paint('33');
const cyan = paint('36');

const out = (line = '') => console.log(line);
const heading = (n: string, text: string) => out(`\n${bold(cyan(n))} ${bold(text)}`);
const note = (text: string) => out(`   ${text}`);

interface ModelView {
  modelName: string;
  latestVersion: number;
  aliases: Record<string, { version: number; movedAt: string; movedBy: string }>;
  aliasHistory?: { alias: string; from: number | null; to: number; at?: string; by?: string }[];
}

interface EvaluationView {
  primaryMetric: string;
  candidate: number | null;
  champion: number | null;
  championVersion?: number;
  difference?: { estimate: number | null; lower: number | null; upper: number | null; confidence: number };
  passed: boolean;
  reasons: { check: string; passed: boolean; message: string }[];
  rows: number;
}

/** Three people to score; the columns are the model's features. */
const SAMPLE_PEOPLE: { who: string; row: Record<string, string | number> }[] = [
  {
    who: 'professional, 16 years of school, 5 years of experience, 27, female',
    row: {
      education: 16,
      experience: 5,
      age: 27,
      gender: 'female',
      race: 'white',
      south: 0,
      union: 0,
      married: 0,
      occupation: 'professional',
      sector: 'other',
    },
  },
  {
    who: 'manufacturing, 12 years of school, 20 years of experience, 38, male',
    row: {
      education: 12,
      experience: 20,
      age: 38,
      gender: 'male',
      race: 'white',
      south: 0,
      union: 1,
      married: 1,
      occupation: 'other',
      sector: 'manufacturing',
    },
  },
  {
    who: 'service job in the South, 10 years of school, 30 years of experience, 46, female',
    row: {
      education: 10,
      experience: 30,
      age: 46,
      gender: 'female',
      race: 'hispanic',
      south: 1,
      union: 0,
      married: 1,
      occupation: 'service',
      sector: 'other',
    },
  },
];

interface Definition {
  name: string;
  modelName?: string;
  description?: string;
  training: { algorithm: string; target: string; features: string[]; [setting: string]: unknown };
  evaluation: { primaryMetric: string; threshold?: number; [setting: string]: unknown };
  approval: { reviewers: string[]; requiredApprovals?: number };
}

/**
 * The pipeline's training turned into the user's own code (`--training DIR`): a custom spec with
 * the folder (absolute, so a Sluice started elsewhere on this machine finds it) and the command,
 * hyperparameters and time limit of its job.json; target, features and split stay the pipeline's.
 */
async function customTraining(
  training: Definition['training'],
  dir: string,
): Promise<Definition['training']> {
  const code = path.resolve(dir);
  let job: { command?: unknown; hyperparameters?: unknown; timeLimitSeconds?: unknown };
  try {
    job = JSON.parse(await readFile(path.join(code, 'job.json'), 'utf8')) as typeof job;
  } catch (err) {
    throw new Error(`--training ${dir}: cannot read its job.json (${(err as Error).message})`, {
      cause: err,
    });
  }
  if (typeof job.command !== 'string') throw new Error(`--training ${dir}: job.json names no command`);
  const { hyperparameters: _builtIn, ...rest } = training;
  return {
    ...rest,
    algorithm: 'custom',
    code,
    command: job.command,
    ...(job.hyperparameters !== undefined ? { hyperparameters: job.hyperparameters } : {}),
    ...(typeof job.timeLimitSeconds === 'number' ? { timeLimitSeconds: job.timeLimitSeconds } : {}),
  };
}

/** The baseline's features: the textbook wage equation's schooling and experience. */
const BASELINE_FEATURES = ['education', 'experience'];

/**
 * Deploys a baseline version of the pipeline (fewer features) so the real run has a production
 * model to be compared with. Its reviewer approves through the page, like anyone else. Undefined
 * when it cannot (no local outbox to read the link from) or the run did not deploy.
 */
async function deployBaseline(
  ctx: Ctx,
  definition: Definition,
  dataFile: string,
  storage: string | undefined,
): Promise<{ version: number; metric: string } | undefined> {
  const baseline: Definition = {
    ...definition,
    description: `Baseline: ${definition.training.target} from ${BASELINE_FEATURES.join(' and ')} only.`,
    training: { ...definition.training, features: BASELINE_FEATURES },
  };
  await api(ctx, 'PUT', `/api/pipelines/${definition.name}`, {
    data: JSON.stringify(baseline),
    type: 'application/json',
  });
  const started = await startRun(ctx, definition.name, dataFile);
  let outbox: ContainerClient;
  try {
    outbox = localOutbox(started.source.uri, storage);
  } catch {
    await api(ctx, 'POST', `/api/runs/${started.runId}/cancel`).catch(() => undefined);
    return undefined;
  }
  const reviewer = definition.approval.reviewers.at(-1)!;
  const message = await waitForMessage(
    outbox,
    started.runId,
    (m) => m.kind === 'request' && m.to === reviewer,
    {
      timeoutMs: 120_000,
    },
  );
  await decideThroughPage(message.link!, 'approve', 'Baseline for the demo.');
  const run = await watchRun({ ...ctx, out: () => undefined }, started.runId, 300);
  const deployed = run.deployment as { version?: number } | undefined;
  if (run.status !== 'succeeded' || !deployed?.version) return undefined;
  const ev = run.metrics?.evaluation as EvaluationView | undefined;
  return {
    version: deployed.version,
    metric: ev ? `${ev.primaryMetric} ${num(ev.candidate)} on its holdout` : 'deployed',
  };
}

async function reachable(url: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('/api/health', url), { signal: AbortSignal.timeout(3_000) });
    return res.status === 200 || res.status === 503;
  } catch {
    return false;
  }
}

async function production(ctx: Ctx, modelName: string): Promise<ModelView | undefined> {
  try {
    return (await api(ctx, 'GET', `/api/models/${encodeURIComponent(modelName)}`)) as ModelView;
  } catch (err) {
    if (/HTTP 404/.test((err as Error).message)) return undefined;
    throw err;
  }
}

const num = (v: number | null | undefined, digits = 3) =>
  v === null || v === undefined ? '—' : v.toFixed(digits);
const signed = (v: number | null | undefined, digits = 3) =>
  v === null || v === undefined ? '—' : `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;

async function startRun(
  ctx: Ctx,
  pipeline: string,
  file: string,
): Promise<{ runId: string; runUrl: string; source: { uri: string } }> {
  const data = await readFile(file);
  const headers: Record<string, string> = {
    'content-type': 'text/csv',
    'x-sluice-client': 'demo',
  };
  if (ctx.key) headers['x-functions-key'] = ctx.key;
  const res = await fetch(new URL(`/api/pipelines/${pipeline}/runs`, ctx.url), {
    method: 'POST',
    headers,
    body: data,
  });
  const body = (await res.json()) as {
    runId: string;
    runUrl: string;
    source: { uri: string };
    detail?: string;
  };
  if (res.status !== 202) throw new Error(`starting the run answered ${res.status}: ${body.detail ?? ''}`);
  return body;
}

/** Reads a JSON report blob of the local artifact account (the same Azurite as the outbox). */
async function readReport(artifactUri: string, storage: string | undefined): Promise<unknown> {
  const parts = new URL(artifactUri).pathname.split('/').slice(2);
  const blob = localBlobService(artifactUri, storage)
    .getContainerClient(parts[0]!)
    .getBlobClient(parts.slice(1).join('/'));
  return JSON.parse((await blob.downloadToBuffer()).toString('utf8')) as unknown;
}

function printEvaluation(ev: EvaluationView | undefined): void {
  if (!ev) {
    note(dim('no evaluation recorded'));
    return;
  }
  const m = ev.primaryMetric;
  if (ev.champion === null) {
    note(
      `${m} ${bold(num(ev.candidate))} on ${ev.rows} holdout rows; no production model yet, so only the absolute thresholds apply`,
    );
  } else {
    const d = ev.difference;
    note(
      `${m}: candidate ${bold(num(ev.candidate))} vs production v${ev.championVersion ?? '?'} ${bold(num(ev.champion))} on the same ${ev.rows} rows`,
    );
    if (d)
      note(
        `difference ${bold(signed(d.estimate))}, ${Math.round(d.confidence * 100)}% interval [${signed(d.lower)}, ${signed(d.upper)}] (paired bootstrap)`,
      );
  }
  for (const r of ev.reasons) note(`${r.passed ? green('✔') : red('✖')} ${r.message}`);
}

const DEMO_OPTIONS = {
  url: { type: 'string' },
  start: { type: 'boolean', default: false },
  'data-dir': { type: 'string' },
  approve: { type: 'boolean', default: false },
  training: { type: 'string' },
  key: { type: 'string' },
  storage: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** A mistyped option or a stray argument: the CLI's own message and exit code 2, as `sluice` does. */
export class DemoUsageError extends Error {}

export function parseDemoArgs(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: DEMO_OPTIONS }).values;
  } catch (err) {
    throw new DemoUsageError(parseErrorMessage(err, 'npm run demo -- --help'));
  }
}

async function main(argv: string[]): Promise<number> {
  const values = parseDemoArgs(argv);
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const root = repoRoot();
  const pipelineFile = path.join(root, 'examples', 'pipelines', 'wages.json');
  const dataFile = path.join(root, 'data', 'cps-wages-1985.csv');
  const driftFile = path.join(root, 'examples', 'data', 'wages-2024-dollars.csv');

  out(bold('Sluice demo') + dim('  ·  approval-gated ML pipelines on Azure Functions + Durable Functions'));

  // Where Sluice runs: the given URL, a running `npm start`, or a devhost of our own.
  let host: LocalSluice | undefined;
  let tempDir: string | undefined;
  let url = values.url ?? process.env.SLUICE_URL;
  // A running `npm start` (on whatever port it was given), else the default port.
  if (!url && !values.start) url = runningDevhostUrl(path.join(root, '.sluice'));
  if (!url && !values.start && (await reachable('http://localhost:7071'))) url = 'http://localhost:7071';
  if (url) {
    if (!(await reachable(url))) {
      out(
        red(
          `Sluice does not answer at ${url}. Start it with \`npm start\`, or drop --url to let the demo start one.`,
        ),
      );
      return 2;
    }
    note(`using Sluice at ${bold(url)}`);
  } else {
    const dataDir = values['data-dir'] ?? (tempDir = await mkdtemp(path.join(os.tmpdir(), 'sluice-demo-')));
    note(`starting devhost (Azurite, the Cosmos emulator, the Durable engine) with data in ${dataDir} …`);
    const t0 = Date.now();
    host = await startLocalSluice({ dataDir });
    url = host.url;
    note(`Sluice is up at ${bold(url)} after ${fmtMs(Date.now() - t0)} ${dim(`(log: ${host.logFile})`)}`);
  }
  const stopHost = async () => {
    if (host) await host.stop();
    if (tempDir) await rm(tempDir, { recursive: true, force: true }).catch(() => undefined);
  };
  process.once('SIGINT', () => {
    out(dim('\ninterrupted: stopping'));
    void stopHost().then(() => process.exit(130));
  });

  const ctx: Ctx = { url, key: values.key ?? process.env.SLUICE_KEY, json: false, out: (l) => out(` ${l}`) };
  try {
    const definition = JSON.parse(await readFile(pipelineFile, 'utf8')) as Definition;
    const modelName = definition.modelName ?? definition.name;

    // 0. A production model to compare with: a deliberately simple baseline, the first time.
    if (!(await production(ctx, modelName))?.aliases.production) {
      heading('0', 'Before we start: a baseline in production');
      note(`there is no ${modelName} model in production yet, so the demo first deploys a simple one:`);
      note(
        `the same pipeline on ${BASELINE_FEATURES.join(' and ')} alone, approved through the page by its reviewer`,
      );
      const t0 = Date.now();
      const baseline = await deployBaseline(ctx, definition, dataFile, values.storage);
      if (baseline) {
        note(
          `${green('✔')} baseline ${bold(`${modelName} v${baseline.version}`)} is in production (${baseline.metric}), after ${fmtMs(Date.now() - t0)}`,
        );
      } else note(yellow('the baseline did not deploy; the run below is the first model'));
    }

    // 1. The pipeline (with the user's own code, if asked).
    // Another model family against the built-in baseline: on ~100 holdout rows the paired interval of
    // the r2 difference is wide (the sklearn example: +0.17, [-0.05, +0.31]), so the demo allows the
    // candidate to be up to 0.1 worse than production instead of the sample pipeline's 0.02, and says so.
    const customMargin = 0.1;
    if (values.training) {
      definition.training = await customTraining(definition.training, values.training);
      definition.evaluation = {
        ...definition.evaluation,
        comparison: { mode: 'non_inferiority', margin: customMargin },
      };
    }
    heading('1', 'Register the pipeline');
    const put = (await api(ctx, 'PUT', `/api/pipelines/${definition.name}`, {
      data: JSON.stringify(definition),
      type: 'application/json',
    })) as { version: number };
    note(`${bold(`${definition.name} v${put.version}`)} from ${path.relative(root, pipelineFile)}`);
    const algorithm =
      definition.training.algorithm === 'custom'
        ? `your own code (${String(definition.training.command)} in ${path.relative(root, String(definition.training.code)) || '.'})`
        : (ALGORITHMS[definition.training.algorithm] ?? definition.training.algorithm);
    note(
      `${algorithm} of ${definition.training.target} on ${definition.training.features.length} features; ` +
        `the candidate needs ${definition.evaluation.primaryMetric} ≥ ${definition.evaluation.threshold ?? '—'} and no worse than production` +
        (values.training
          ? ` (--training: within ${customMargin} of it, as another model family's interval on ~100 rows is wide)`
          : ''),
    );
    note(
      `reviewers ${definition.approval.reviewers.join(', ')} (${definition.approval.requiredApprovals ?? 1} approval needed)`,
    );
    const before = await production(ctx, modelName);
    const prodBefore = before?.aliases.production?.version;
    note(
      `production model now: ${prodBefore ? bold(`${modelName} v${prodBefore}`) : 'none yet (this will be the first)'}`,
    );

    // 2. The run.
    heading('2', 'Run it on the real data');
    const rows = (await readFile(dataFile, 'utf8')).trim().split('\n').length - 1;
    note(`${path.relative(root, dataFile)}: ${rows} workers from the May 1985 Current Population Survey`);
    const started = await startRun(ctx, definition.name, dataFile);
    note(`run ${bold(started.runId)}  ${dim(started.runUrl)}`);
    let outbox: ContainerClient | undefined;
    try {
      outbox = localOutbox(started.source.uri, values.storage);
    } catch (err) {
      note(yellow((err as Error).message));
    }

    let decided: Promise<void> = Promise.resolve();
    const onStatus = (run: RunView) => {
      if (run.status !== 'waiting_for_approval' || !outbox) return;
      const box = outbox;
      decided = (async () => {
        const message = await waitForMessage(box, run.id, (m) => m.kind === 'request' && m.to === REVIEWER, {
          timeoutMs: 60_000,
        });
        heading('3', 'A person decides');
        note(`The reviewers were notified (local outbox: blob container "outbox"). ${REVIEWER}'s link:`);
        out(`\n     ${bold(cyan(message.link ?? '(no link)'))}\n`);
        if (!values.approve) {
          note('Open it in a browser, read the evidence, and press Approve or Reject.');
          note(
            dim(
              'Waiting for the decision… (or run `npm run demo -- --approve` to let the demo click for you)',
            ),
          );
          return;
        }
        note(`--approve: acting as ${REVIEWER} through the page, as a browser does`);
        const result = await decideThroughPage(
          message.link!,
          'approve',
          'Checked the holdout metrics and the validation report: fine to deploy.',
        );
        note(
          `GET the page (${Math.round(result.pageBytes / 1024)} KB), POST its form with decision=approve → ${result.status}`,
        );
        note(green(`“${result.notice}”`));
      })();
    };
    const run = await watchRun(ctx, started.runId, 500, onStatus);
    await decided.catch((err: unknown) =>
      note(red(`could not act on the approval: ${(err as Error).message}`)),
    );

    out();
    const statusText = `${run.status}${run.stopReason ? ` (${run.stopReason})` : ''}`;
    note(`run ${run.id}: ${run.status === 'succeeded' ? green(bold(statusText)) : red(bold(statusText))}`);
    if (run.reason) note(`reason: ${run.reason}`);

    // 4. The deployment, scored.
    const after = await production(ctx, modelName);
    const prodAfter = after?.aliases.production;
    if (run.status === 'succeeded' && prodAfter) {
      heading('4', 'Deployed');
      const moved = prodAfter.version !== prodBefore;
      note(
        moved
          ? `${bold(`${modelName} v${prodAfter.version}`)} is now production (was ${prodBefore ? `v${prodBefore}` : 'none'}), moved by ${prodAfter.movedBy} at ${prodAfter.movedAt}`
          : `${modelName} v${prodAfter.version} was already production (the same data and seed give a byte-identical model), so the alias did not move`,
      );
      note(`scoring with POST /api/models/${modelName}/predict:`);
      const scored = (await api(ctx, 'POST', `/api/models/${modelName}/predict`, {
        data: JSON.stringify({ rows: SAMPLE_PEOPLE.map((p) => p.row) }),
        type: 'application/json',
      })) as { version: number; predictions: number[] };
      SAMPLE_PEOPLE.forEach((p, i) => {
        const wage = scored.predictions[i];
        note(
          `  ${bold(typeof wage === 'number' ? `$${wage.toFixed(2)}/h` : String(wage)).padEnd(color ? 18 : 10)} ${p.who}`,
        );
      });
    }

    // Summary.
    heading('=', 'Summary');
    const ev = run.metrics?.evaluation as EvaluationView | undefined;
    note(bold('Evaluation against production'));
    printEvaluation(ev);
    const t = run.timing;
    if (t)
      note(
        `${bold('Time')}: ${fmtMs(t.totalMs)} in all = compute ${fmtMs(t.computeMs)} + waiting for people ${fmtMs(t.peopleMs)} + queued ${fmtMs(t.queuedMs)}`,
      );
    const approval = run.approval as { approvedBy?: string[]; rejectedBy?: string[] } | undefined;
    if (approval?.approvedBy?.length) note(`${bold('Approved by')}: ${approval.approvedBy.join(', ')}`);
    if (approval?.rejectedBy?.length) note(`${bold('Rejected by')}: ${approval.rejectedBy.join(', ')}`);

    // 5. Drifted data.
    const productionNow = after?.aliases.production?.version;
    heading('5', 'The data changes: a feed that now reports wages in 2024 dollars');
    if (!productionNow) {
      note('There is no production model, so there is no reference to check drift against; skipping.');
      return run.status === 'succeeded' ? 0 : 1;
    }
    note(`${path.relative(root, driftFile)}: the same workers, wage × 2.915 (CPI 2024 / 1985)`);
    const drifted = await startRun(ctx, definition.name, driftFile);
    note(`run ${bold(drifted.runId)}`);
    const second = await watchRun(ctx, drifted.runId, 500);
    out();
    const validate = second.steps.find((s) => s.name === 'validate') as
      (RunView['steps'][number] & { outputs?: { reportUri?: string } }) | undefined;
    if (second.status === 'stopped' && second.stopReason === 'validation_failed') {
      note(`${red(bold('stopped at validation'))}: ${second.reason ?? ''}`);
      if (validate?.outputs?.reportUri && outbox) {
        try {
          const report = (await readReport(validate.outputs.reportUri, values.storage)) as {
            drift?: {
              columns?: {
                column: string;
                status: string;
                metrics: Record<string, { value: number; threshold: number }>;
              }[];
            };
          };
          for (const c of report.drift?.columns ?? []) {
            if (c.status !== 'drifted') continue;
            const ms = Object.entries(c.metrics)
              .map(([k, v]) => `${k} ${v.value.toFixed(2)} (threshold ${v.threshold})`)
              .join(', ');
            note(`  ${bold(c.column)}: ${ms}`);
          }
        } catch {
          // The report is a detail; the reason above already names the drifted columns.
        }
      }
      const still = (await production(ctx, modelName))?.aliases.production?.version;
      note(`nothing was trained or deployed: production is still ${bold(`${modelName} v${still}`)}`);
    } else {
      note(yellow(`expected the validation gate to stop this run, but it ended ${second.status}`));
    }

    out();
    if (host)
      note(
        dim(
          `The demo's devhost stops now. To keep one running: \`npm start\`, then \`npm run demo\` in another terminal.`,
        ),
      );
    else
      note(
        dim(
          `Explore: node dist/cli/sluice.js runs --url ${url}   ·   node dist/cli/sluice.js status ${run.id} --url ${url}`,
        ),
      );
    return run.status === 'succeeded' && second.stopReason === 'validation_failed' ? 0 : 1;
  } finally {
    await stopHost();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(red(`demo: ${err instanceof Error ? err.message : String(err)}`));
      process.exit(err instanceof DemoUsageError ? 2 : 1);
    },
  );
}
