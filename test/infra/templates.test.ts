/**
 * The CI/CD templates (azure-pipelines.yml, .github/workflows/delivery.yml; docs/delivery.md,
 * "Templates"), read with a YAML parser: their jobs, order and dependencies, sign-in by workload
 * identity federation with no stored secret, and that every command they run exists (an npm script,
 * a `sluice` command and option, a file). And the azd environment they deploy with: brought from azd
 * remote state by scripts/azd-remote-env.mjs, run here against stand-ins of `az` and `azd`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { readDefinitions } from '../../cli/pipelinesAsCode';
import { COMMANDS } from '../../cli/sluice';
import { repoRoot } from '../support/devhost';

type Json = Record<string, unknown>;
const load = (file: string) => parse(readFileSync(path.join(repoRoot, file), 'utf8')) as Json;
const ado = load('azure-pipelines.yml');
const gh = load('.github/workflows/delivery.yml');
const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  bin: Record<string, string>;
  devEngines: { packageManager: { version: string } };
};

interface AdoStep {
  script?: string;
  task?: string;
  displayName?: string;
  inputs?: Json;
  env?: Json;
}
interface AdoJob {
  job?: string;
  deployment?: string;
  environment?: string;
  steps?: AdoStep[];
  strategy?: { runOnce: { deploy: { steps: AdoStep[] } } };
}
interface AdoStage {
  stage: string;
  dependsOn?: string | string[];
  condition?: string;
  jobs: AdoJob[];
}
const stages = ado.stages as AdoStage[];
const stage = (name: string) => stages.find((s) => s.stage === name)!;
const stepsOf = (j: AdoJob) => j.steps ?? j.strategy?.runOnce.deploy.steps ?? [];
/** Each step's shell text: a script, or an AzureCLI@2 inline script. */
const adoScripts = (s: AdoStage) =>
  s.jobs.flatMap(stepsOf).map((st) => st.script ?? String(st.inputs?.inlineScript ?? ''));

interface GhStep {
  uses?: string;
  run?: string;
  with?: Json;
}
interface GhJob {
  needs?: string | string[];
  if?: string;
  environment?: string;
  permissions?: Json;
  steps: GhStep[];
}
const ghJobs = gh.jobs as Record<string, GhJob>;
const ghScripts = (j: GhJob) => j.steps.map((s) => s.run ?? '');

/** Index of the first script containing `text` (-1 if none), to check the order of commands. */
const at = (scripts: string[], text: string) => {
  const all = scripts.join('\n');
  return all.indexOf(text);
};
const inOrder = (scripts: string[], ...texts: string[]) => {
  const positions = texts.map((t) => at(scripts, t));
  expect(positions.every((p) => p >= 0)).toBe(true);
  expect([...positions].sort((a, b) => a - b)).toEqual(positions);
};

describe('azure-pipelines.yml', () => {
  it('runs on pull requests and on main', () => {
    expect(ado.trigger).toEqual({ branches: { include: ['main'] } });
    expect(ado.pr).toEqual({ branches: { include: ['main'] } });
  });

  it('has the stages build → plan (PR) and build → dev → prod → pipelines (main)', () => {
    expect(stages.map((s) => s.stage)).toEqual(['build', 'plan', 'dev', 'prod', 'pipelines']);
    expect(stage('build').dependsOn).toBeUndefined();
    expect(stage('plan').dependsOn).toBe('build');
    expect(stage('plan').condition).toMatch(/eq\(variables\['Build\.Reason'\], 'PullRequest'\)/);
    expect(stage('dev').dependsOn).toBe('build');
    expect(stage('dev').condition).toMatch(/refs\/heads\/main/);
    expect(stage('dev').condition).toMatch(/ne\(variables\['Build\.Reason'\], 'PullRequest'\)/);
    expect(stage('prod').dependsOn).toBe('dev');
    expect(stage('pipelines').dependsOn).toBe('prod');
  });

  it('tests before anything: npm ci, npm test, az bicep build, sluice pipelines validate', () => {
    inOrder(adoScripts(stage('build')), 'npm ci', 'npm test', 'az bicep build', 'sluice pipelines validate');
    expect(
      at(adoScripts(stage('plan')), 'sluice pipelines plan pipelines/ --detailed-exitcode'),
    ).toBeGreaterThan(-1);
  });

  it('deploys with azd to dev, then to prod through an environment, then applies pipelines/', () => {
    const dev = stage('dev').jobs[0]!;
    const prod = stage('prod').jobs[0]!;
    expect(dev.deployment).toBe('deploy_dev');
    expect(prod.deployment).toBe('deploy_prod');
    // Deployment jobs in environments: prod's approvals and the Sluice check hold the job.
    expect(dev.environment).toBe('${{ variables.devEnvironment }}');
    expect(prod.environment).toBe('${{ variables.prodEnvironment }}');
    expect((ado.variables as Json).prodEnvironment).toBe('sluice-prod');
    inOrder(adoScripts(stage('dev')), 'azd provision', 'azd deploy', 'sluice pipelines apply');
    inOrder(adoScripts(stage('prod')), 'azd provision', 'azd deploy');
    inOrder(adoScripts(stage('pipelines')), 'sluice pipelines plan', 'sluice pipelines apply');
  });

  it('signs in only through the workload identity service connection (AzureCLI@2)', () => {
    const azure = stages
      .flatMap((s) => s.jobs.flatMap(stepsOf))
      .filter((s) => s.task?.startsWith('AzureCLI'));
    expect(azure.length).toBeGreaterThanOrEqual(4);
    for (const t of azure) {
      expect(t.task).toBe('AzureCLI@2');
      // The pull request plan signs in with its own Reader-only connection (next test).
      const plan = stage('plan').jobs.flatMap(stepsOf).includes(t);
      expect(t.inputs?.azureSubscription).toBe(plan ? '$(planServiceConnection)' : '$(serviceConnection)');
    }
    // Every az and azd command runs inside such a task.
    for (const s of stages.flatMap((st) => st.jobs.flatMap(stepsOf)))
      if (s.script) expect(s.script).not.toMatch(/\baz(d)? (provision|deploy|functionapp)/);
    for (const t of azure.filter((x) => /azd (provision|deploy)/.test(String(x.inputs?.inlineScript))))
      expect(String(t.inputs?.inlineScript)).toMatch(/azd config set auth\.useAzCliAuth true/);
  });
});

describe('the pull request plan: its own Reader-only identity, no azd state', () => {
  // The plan runs a pull request's code before review: the deploying identity can write azd state
  // (the stored environments, with their generated keys) and the environments themselves.
  const touchesState =
    /AZD_STATE|azdStateContainer|azd-remote-env|\bazd (auth|env|config|provision|deploy)\b|az storage|setup-azd/;

  it('delivery.yml: the plan job signs in as AZURE_PLAN_CLIENT_ID, which only it uses', () => {
    const plan = ghJobs.plan!;
    const logins = plan.steps.filter((x) => x.uses?.startsWith('azure/login'));
    expect(logins).toHaveLength(1);
    expect(logins[0]!.with?.['client-id']).toBe('${{ vars.AZURE_PLAN_CLIENT_ID }}');
    const text = JSON.stringify(plan);
    expect(text).not.toMatch(/AZURE_CLIENT_ID/);
    expect(text).not.toMatch(touchesState);
    // Nothing the plan job inherits names the deploying identity.
    expect(Object.keys((gh.env as Json | undefined) ?? {})).not.toContain('AZURE_CLIENT_ID');
    expect(JSON.stringify(gh.env ?? {})).not.toMatch(/CLIENT_ID/);
    for (const [name, job] of Object.entries(ghJobs)) {
      if (name === 'plan') continue;
      expect([name, JSON.stringify(job)]).not.toEqual([name, expect.stringMatching(/AZURE_PLAN_CLIENT_ID/)]);
      for (const x of job.steps.filter((st) => st.uses?.startsWith('azure/login')))
        expect(x.with?.['client-id']).toBe('${{ vars.AZURE_CLIENT_ID }}');
    }
    for (const name of ['deploy-dev', 'deploy-prod'])
      expect((ghJobs[name] as GhJob & { env?: Json }).env?.AZURE_CLIENT_ID).toBe(
        '${{ vars.AZURE_CLIENT_ID }}',
      );
  });

  it('azure-pipelines.yml: the plan stage signs in with planServiceConnection, which only it uses', () => {
    const vars = ado.variables as Json;
    expect(vars.planServiceConnection).toEqual(expect.any(String));
    expect(vars.planServiceConnection).not.toBe(vars.serviceConnection);
    const text = JSON.stringify(stage('plan'));
    expect(text).toContain('$(planServiceConnection)');
    expect(text).not.toContain('$(serviceConnection)');
    expect(text).not.toMatch(touchesState);
    for (const st of stages.filter((x) => x.stage !== 'plan'))
      expect([st.stage, JSON.stringify(st).includes('planServiceConnection')]).toEqual([st.stage, false]);
  });
});

describe('.github/workflows/delivery.yml', () => {
  it('has build → plan (PR) and build → deploy-dev → deploy-prod (push to main)', () => {
    expect(Object.keys(ghJobs)).toEqual(['build', 'plan', 'deploy-dev', 'deploy-prod']);
    expect(ghJobs.build!.needs).toBeUndefined();
    expect(ghJobs.plan!.needs).toBe('build');
    expect(ghJobs.plan!.if).toMatch(/github\.event_name == 'pull_request'/);
    expect(ghJobs['deploy-dev']!.needs).toBe('build');
    expect(ghJobs['deploy-dev']!.if).toMatch(/github\.ref == 'refs\/heads\/main'/);
    expect(ghJobs['deploy-prod']!.needs).toBe('deploy-dev');
    expect(ghJobs['deploy-dev']!.environment).toBe('dev');
    expect(ghJobs['deploy-prod']!.environment).toBe('production');
  });

  it('runs the same commands in the same order as the Azure DevOps template', () => {
    inOrder(ghScripts(ghJobs.build!), 'npm ci', 'npm test', 'az bicep build', 'sluice pipelines validate');
    expect(
      at(ghScripts(ghJobs.plan!), 'sluice pipelines plan pipelines/ --detailed-exitcode'),
    ).toBeGreaterThan(-1);
    inOrder(ghScripts(ghJobs['deploy-dev']!), 'azd provision', 'azd deploy', 'sluice pipelines apply');
    inOrder(
      ghScripts(ghJobs['deploy-prod']!),
      'azd provision',
      'azd deploy',
      'sluice pipelines plan',
      'sluice pipelines apply',
    );
  });

  it('signs in with OIDC: id-token: write only on the jobs that sign in, azure/login with ids only', () => {
    expect(gh.permissions).toEqual({ contents: 'read' });
    for (const [name, job] of Object.entries(ghJobs)) {
      const signsIn = job.steps.some(
        (s) => s.uses?.startsWith('azure/login') || /azd auth login/.test(s.run ?? ''),
      );
      expect([name, job.permissions?.['id-token']]).toEqual([name, signsIn ? 'write' : undefined]);
      for (const s of job.steps.filter((x) => x.uses?.startsWith('azure/login'))) {
        expect(Object.keys(s.with ?? {}).sort()).toEqual(['client-id', 'subscription-id', 'tenant-id']);
      }
      for (const s of job.steps.filter((x) => /azd auth login/.test(x.run ?? '')))
        expect(s.run).toMatch(/--federated-credential-provider github/);
    }
  });
});

describe('both templates', () => {
  const texts = {
    'azure-pipelines.yml': readFileSync(path.join(repoRoot, 'azure-pipelines.yml'), 'utf8'),
    '.github/workflows/delivery.yml': readFileSync(
      path.join(repoRoot, '.github/workflows/delivery.yml'),
      'utf8',
    ),
  };
  const parsed = { 'azure-pipelines.yml': ado, '.github/workflows/delivery.yml': gh };

  /** Every key and string value of a parsed YAML document (comments are not values). */
  function* strings(v: unknown, key = ''): Generator<[string, string]> {
    if (typeof v === 'string') yield [key, v];
    else if (Array.isArray(v)) for (const x of v) yield* strings(x, key);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        yield [k, k];
        yield* strings(x, k);
      }
  }

  it.each(Object.keys(texts))(
    '%s holds no secret: no secrets context, password, key or token literal',
    (file) => {
      const text = texts[file as keyof typeof texts];
      expect(text).not.toMatch(/\$\{\{\s*secrets\./);
      expect(text).not.toMatch(/AccountKey=|SharedAccessSignature=|-----BEGIN/);
      for (const [key, value] of strings(parsed[file as keyof typeof parsed])) {
        expect([key, value]).not.toEqual([key, expect.stringMatching(/password|passwd|client[-_]?secret/i)]);
        expect([key, value]).not.toEqual([
          key,
          expect.stringMatching(/creds|credentials|serviceprincipalkey/i),
        ]);
        // No literal that looks like a credential: a long run of key-like characters.
        expect([key, value]).not.toEqual([key, expect.stringMatching(/[A-Za-z0-9+/]{40,}={0,2}/)]);
      }
    },
  );

  const allScripts = [
    ...stages.flatMap((s) => adoScripts(s)),
    ...Object.values(ghJobs).flatMap((j) => ghScripts(j)),
  ].join('\n');

  it('runs only npm scripts that exist and the sluice bin', () => {
    const npmRuns = [...allScripts.matchAll(/\bnpm (?:run )?([a-z][a-z:-]*)/g)].map((m) => m[1]!);
    expect(npmRuns.length).toBeGreaterThan(0);
    for (const s of npmRuns) if (s !== 'ci' && s !== 'install') expect(Object.keys(pkg.scripts)).toContain(s);
    expect(pkg.bin.sluice).toBeDefined();
  });

  it('every job that runs npm ci first installs an npm that package.json devEngines accepts', () => {
    // Node 22 ships npm 10, which ignores allowScripts; devEngines stops it (test/infra/package.test.ts).
    const floor = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(pkg.devEngines.packageManager.version)!;
    const atLeastFloor = (v: string) => {
      const [a, b, c] = v.split('.').map(Number);
      const [x, y, z] = floor.slice(1).map(Number);
      return a! !== x! ? a! > x! : b! !== y! ? b! > y! : c! >= z!;
    };
    const npmVersion = String((ado.variables as Json).npmVersion);
    const jobs: string[][] = [
      ...stages.flatMap((st) =>
        st.jobs.map((j) => stepsOf(j).map((x) => x.script ?? String(x.inputs?.inlineScript ?? ''))),
      ),
      ...Object.values(ghJobs).map((j) => ghScripts(j)),
    ];
    let checked = 0;
    for (const steps of jobs) {
      const ci = steps.findIndex((t) => /\bnpm ci\b/.test(t));
      if (ci < 0) continue;
      checked++;
      const upgrade = steps.findIndex((t) => /\bnpm install -g npm@/.test(t));
      expect(upgrade).toBeGreaterThanOrEqual(0);
      expect(upgrade).toBeLessThan(ci);
      const version = /npm@(\S+)/.exec(steps[upgrade]!)![1]!.replace('$(npmVersion)', npmVersion);
      expect([version, atLeastFloor(version)]).toEqual([version, true]);
    }
    expect(checked).toBeGreaterThanOrEqual(6);
  });

  it('names only sluice commands and options the CLI has', () => {
    const calls = [...allScripts.matchAll(/npx sluice ([a-z]+) ([a-z]+)([^\n|;&]*)/g)];
    expect(calls.length).toBeGreaterThanOrEqual(8);
    for (const [, cmd, sub, rest] of calls) {
      const spec = COMMANDS[cmd!];
      expect(spec).toBeDefined();
      expect(spec!.usage).toMatch(new RegExp(`\\b${sub}\\b`));
      for (const [, option] of rest!.matchAll(/--([a-z-]+)/g))
        expect(Object.keys(spec!.options)).toContain(option);
    }
  });

  it('builds the Bicep that exists and applies a pipelines/ folder that validates', async () => {
    for (const [, file] of allScripts.matchAll(/az bicep build --file (\S+)/g))
      expect(existsSync(path.join(repoRoot, file!))).toBe(true);
    const { definitions, problems } = await readDefinitions(path.join(repoRoot, 'pipelines'));
    expect(problems).toEqual([]);
    expect(definitions.length).toBeGreaterThan(0);
  });
});

describe('the azd environment of the deploying jobs (azd remote state)', () => {
  const adoDeploying = [stage('dev'), stage('prod')].map((st) => {
    const task = st.jobs
      .flatMap(stepsOf)
      .find((t) => /azd provision/.test(String(t.inputs?.inlineScript ?? '')))!;
    return { name: st.stage, script: String(task.inputs!.inlineScript), env: task.env ?? {} };
  });
  const ghDeploying = ['deploy-dev', 'deploy-prod'].map((name) => ({ name, job: ghJobs[name]! }));

  it('azure-pipelines.yml: every job that provisions brings the stored environment first, after azd signs in', () => {
    expect(adoDeploying).toHaveLength(2);
    for (const { script, env } of adoDeploying) {
      inOrder(
        [script],
        'azd config set auth.useAzCliAuth true',
        'node scripts/azd-remote-env.mjs',
        'azd provision',
      );
      expect(env).toMatchObject({
        AZD_STATE_ACCOUNT: '$(AZD_STATE_ACCOUNT)',
        AZD_STATE_CONTAINER: '$(azdStateContainer)',
      });
    }
    expect((ado.variables as Json).azdStateContainer).toBe('sluice');
  });

  it('delivery.yml: every job that provisions brings the stored environment first, after azd signs in', () => {
    for (const { job } of ghDeploying) {
      const runs = ghScripts(job);
      inOrder(runs, 'azd auth login', 'node scripts/azd-remote-env.mjs', 'azd provision');
      const step = job.steps.find((x) => x.run === 'node scripts/azd-remote-env.mjs') as GhStep & {
        env?: Json;
      };
      expect(step.env).toEqual({
        AZD_STATE_ACCOUNT: '${{ vars.AZD_STATE_ACCOUNT }}',
        AZD_STATE_CONTAINER: "${{ vars.AZD_STATE_CONTAINER || 'sluice' }}",
      });
    }
  });

  it('masks the function key in the log as soon as a job reads it', () => {
    const adoAll = stages.flatMap((st) => adoScripts(st));
    const ghAll = Object.values(ghJobs).flatMap((j) => ghScripts(j));
    const readers = [...adoAll, ...ghAll].filter((t) => /functionapp keys list/.test(t));
    expect(readers.length).toBe(4);
    for (const text of adoAll.filter((t) => /functionapp keys list/.test(t)))
      inOrder([text], 'functionapp keys list', 'echo "##vso[task.setsecret]$SLUICE_KEY"', 'npx sluice');
    for (const text of ghAll.filter((t) => /functionapp keys list/.test(t)))
      inOrder([text], 'functionapp keys list', 'echo "::add-mask::$key"', 'npx sluice');
  });

  /**
   * scripts/azd-remote-env.mjs with `az` and `azd` stand-ins first on PATH: each logs its arguments
   * and answers as the scenario says (the state container reachable, the environment stored, the
   * resource group there).
   */
  function runScript(
    scenario: { reachable: boolean; stored: boolean; rgExists: boolean },
    env: Record<string, string | undefined>,
  ) {
    const dir = mkdtempSync(path.join(tmpdir(), 'azd-remote-env-'));
    try {
      const log = path.join(dir, 'calls.log');
      const shim = (body: string) => `#!/bin/sh\necho "$(basename "$0") $*" >> "${log}"\n${body}\n`;
      writeFileSync(
        path.join(dir, 'az'),
        shim(`case "$1 $2" in
  "storage blob") ${scenario.reachable ? 'exit 0' : 'echo "AuthorizationPermissionMismatch" >&2; exit 1'} ;;
  "group exists") echo ${scenario.rgExists ? 'true' : 'false'} ;;
  *) exit 3 ;;
esac`),
      );
      writeFileSync(
        path.join(dir, 'azd'),
        shim(`case "$1 $2" in
  "config set") exit 0 ;;
  "env select") ${scenario.stored ? 'exit 0' : 'echo "ERROR: environment not found" >&2; exit 1'} ;;
  "env new") exit 0 ;;
  *) exit 3 ;;
esac`),
      );
      chmodSync(path.join(dir, 'az'), 0o755);
      chmodSync(path.join(dir, 'azd'), 0o755);
      const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/azd-remote-env.mjs')], {
        encoding: 'utf8',
        env: { PATH: `${dir}:${process.env.PATH ?? ''}`, ...env },
      });
      const calls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
      return { status: r.status, stderr: r.stderr, calls };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const ciEnv = {
    AZURE_ENV_NAME: 'sluice-prod',
    AZD_STATE_ACCOUNT: 'stsluicestate',
    AZD_STATE_CONTAINER: 'sluice',
    AZURE_SUBSCRIPTION_ID: '00000000-0000-0000-0000-000000000001',
    AZURE_LOCATION: 'swedencentral',
  };
  const remoteState = [
    'azd config set state.remote.backend AzureBlobStorage',
    'azd config set state.remote.config.accountName stsluicestate',
    'azd config set state.remote.config.containerName sluice',
  ];
  const probe =
    'az storage blob list --account-name stsluicestate --container-name sluice --auth-mode login --num-results 1 --output none';

  it('selects the stored environment, reaching the state with the job identity (no key)', () => {
    const r = runScript({ reachable: true, stored: true, rgExists: true }, ciEnv);
    expect(r.status).toBe(0);
    expect(r.calls).toEqual([...remoteState, probe, 'azd env select sluice-prod --no-prompt']);
  });

  it('creates the environment on a first run (no stored environment, no resource group)', () => {
    const r = runScript({ reachable: true, stored: false, rgExists: false }, ciEnv);
    expect(r.status).toBe(0);
    expect(r.calls.slice(-2)).toEqual([
      'az group exists --name rg-sluice-prod',
      'azd env new sluice-prod --subscription 00000000-0000-0000-0000-000000000001 --location swedencentral --no-prompt',
    ]);
  });

  it('stops rather than provision a deployed environment from a blank one (it would rotate the keys)', () => {
    const r = runScript({ reachable: true, stored: false, rgExists: true }, ciEnv);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/rg-sluice-prod exists/);
    expect(r.calls.some((c) => c.startsWith('azd env new'))).toBe(false);
    // Accepting new keys is a deliberate, named choice.
    const accepted = runScript(
      { reachable: true, stored: false, rgExists: true },
      { ...ciEnv, SLUICE_ALLOW_FRESH_AZD_ENV: 'true' },
    );
    expect(accepted.status).toBe(0);
    expect(accepted.calls.at(-1)).toMatch(/^azd env new sluice-prod /);
  });

  it('stops before touching any environment when the state cannot be read', () => {
    const r = runScript({ reachable: false, stored: true, rgExists: false }, ciEnv);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Storage Blob Data Contributor/);
    expect(r.calls).toEqual([...remoteState, probe]);
  });

  it('names a missing or undefined variable (an Azure Pipelines macro left as text) and does nothing', () => {
    for (const account of [undefined, '', '$(AZD_STATE_ACCOUNT)']) {
      const r = runScript(
        { reachable: true, stored: true, rgExists: false },
        { ...ciEnv, AZD_STATE_ACCOUNT: account },
      );
      expect([r.status, r.calls]).toEqual([1, []]);
      expect(r.stderr).toMatch(/AZD_STATE_ACCOUNT is not set/);
    }
  });
});
