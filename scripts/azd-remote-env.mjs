#!/usr/bin/env node
// Brings the CI job's azd environment from azd remote state in Blob Storage (docs/delivery.md,
// "The azd environment in CI"), so each run provisions with the environment the last run left:
// the keys azd generated once (approval signing keys, the webhook secret), the GitHub App's key and
// every SLUICE_* option set with `azd env set`. Without it each run starts from a blank environment
// and `azd provision` writes new keys to Key Vault (outstanding approval links stop verifying).
//
//   node scripts/azd-remote-env.mjs
//
// Reads AZURE_ENV_NAME, AZD_STATE_ACCOUNT (the storage account), AZD_STATE_CONTAINER (default
// `sluice`), AZURE_SUBSCRIPTION_ID and AZURE_LOCATION (for a first run). Run it after azd is signed
// in and before `azd provision`. The state is reached with the job's own federated identity (azd's
// sign-in, and `az --auth-mode login` for the reachability check): no storage key, no SAS.
//
// 1. Sets azd's remote state (its user config, `state.remote`: the form Microsoft documents for
//    "enable globally"), so a developer's local `azd up` is untouched.
// 2. Lists the state container with the identity. Unreachable state must stop the job: carrying on
//    would look exactly like a first run and rotate every generated key.
// 3. `azd env select` copies the stored environment into the job. If there is none:
// 4. a first run (`azd env new`), unless the resource group rg-<env> already exists: then the
//    environment was lost or never uploaded, and provisioning from a blank one would overwrite the
//    stored secrets, so it stops and says how to upload it (SLUICE_ALLOW_FRESH_AZD_ENV=true
//    accepts the new keys instead).
//
// Exit 0 when the environment is selected; 1 otherwise, with the reason on stderr.
import { spawnSync } from 'node:child_process';

// An Azure Pipelines variable that is not defined reaches the script as its own macro text.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([, v]) => v !== undefined && !/^\$\(.*\)$/.test(v)),
);

function fail(message) {
  console.error(`azd-remote-env: ${message}`);
  process.exit(1);
}

/** Runs a command, its output in the job's log; returns its status, and its stdout when captured. */
function run(cmd, args, capture = false) {
  const stdio = ['ignore', capture ? 'pipe' : 'inherit', 'inherit'];
  const r = spawnSync(cmd, args, { stdio, encoding: 'utf8' });
  if (r.error) fail(`cannot run ${cmd}: ${r.error.message}`);
  return { status: r.status ?? 1, stdout: r.stdout ?? '' };
}

function must(cmd, args, what, capture = false) {
  const r = run(cmd, args, capture);
  if (r.status !== 0) fail(`${what} failed (${cmd} ${args.join(' ')} exited ${r.status})`);
  return r.stdout;
}

for (const name of ['AZURE_ENV_NAME', 'AZD_STATE_ACCOUNT'])
  if (!env[name])
    fail(
      `${name} is not set: it names ${name === 'AZD_STATE_ACCOUNT' ? "the storage account that keeps azd's environments" : 'the azd environment'} (docs/delivery.md)`,
    );
const name = env.AZURE_ENV_NAME;
const account = env.AZD_STATE_ACCOUNT;
const container = env.AZD_STATE_CONTAINER || 'sluice';

must('azd', ['config', 'set', 'state.remote.backend', 'AzureBlobStorage'], 'setting azd remote state');
must('azd', ['config', 'set', 'state.remote.config.accountName', account], 'setting azd remote state');
must('azd', ['config', 'set', 'state.remote.config.containerName', container], 'setting azd remote state');

const reach = run('az', [
  'storage',
  'blob',
  'list',
  '--account-name',
  account,
  '--container-name',
  container,
  '--auth-mode',
  'login',
  '--num-results',
  '1',
  '--output',
  'none',
]);
if (reach.status !== 0)
  fail(
    `cannot list container ${container} of storage account ${account} with this identity: create the container and grant the pipeline's identity "Storage Blob Data Contributor" on it. Stopping: a blank azd environment would rotate every generated key.`,
  );

if (run('azd', ['env', 'select', name, '--no-prompt']).status === 0) {
  console.error(`azd-remote-env: using azd environment ${name} from ${account}/${container}`);
  process.exit(0);
}

const rg = `rg-${name}`;
const exists = must('az', ['group', 'exists', '--name', rg], `looking for resource group ${rg}`, true).trim();
if (exists === 'true' && env.SLUICE_ALLOW_FRESH_AZD_ENV !== 'true')
  fail(
    `no azd environment ${name} in ${account}/${container}, but ${rg} exists: provisioning from a blank environment would overwrite its generated keys. Upload the environment once from a machine that has it (with the same remote state configured, any write saves it, e.g. \`azd env set SLUICE_STATE_UPLOADED true -e ${name}\`), or set SLUICE_ALLOW_FRESH_AZD_ENV=true for one run to accept new keys.`,
  );
if (!env.AZURE_SUBSCRIPTION_ID || !env.AZURE_LOCATION)
  fail('a first run needs AZURE_SUBSCRIPTION_ID and AZURE_LOCATION to create the azd environment');
must(
  'azd',
  [
    'env',
    'new',
    name,
    '--subscription',
    env.AZURE_SUBSCRIPTION_ID,
    '--location',
    env.AZURE_LOCATION,
    '--no-prompt',
  ],
  `creating azd environment ${name}`,
);
console.error(`azd-remote-env: created azd environment ${name}; azd saves it to ${account}/${container}`);
