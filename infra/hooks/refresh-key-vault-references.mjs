// azd `postprovision` hook (azure.yaml): makes App Service resolve the Function App's Key Vault
// references again, until every one is Resolved.
//
// Why: main.bicep writes the app settings only after the app identity holds Key Vault Secrets User
// (the api module depends on the roles module), but Azure RBAC can take minutes to apply a new
// assignment. A reference App Service tries before then fails, and App Service keeps that result
// (the setting's value is the literal @Microsoft.KeyVault(...) text) until its next refresh, up to
// 24 hours later. POST .../config/configreferences/appsettings/refresh is the documented way to
// force a new resolution (App Service docs, "Use Key Vault references", rotation).
//
// Needs the Azure CLI (`az`, signed in as the deployer). Without it, it prints the one command to
// run by hand and exits 0: the deployment itself succeeded.
import { spawnSync } from 'node:child_process';

const API = '2024-04-01';
const ATTEMPTS = Number(process.env.SLUICE_KV_REFRESH_ATTEMPTS ?? 12);
const WAIT_MS = Number(process.env.SLUICE_KV_REFRESH_WAIT_MS ?? 20_000);

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (azd sets it from the provisioning outputs)`);
  return value;
};

function az(args) {
  const r = spawnSync('az', args, { encoding: 'utf8', shell: process.platform === 'win32' });
  if (r.error) return { ok: false, missing: true, text: String(r.error.message) };
  return { ok: r.status === 0, text: r.status === 0 ? r.stdout : r.stderr };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const site = `/subscriptions/${env('AZURE_SUBSCRIPTION_ID')}/resourceGroups/${env('AZURE_RESOURCE_GROUP')}/providers/Microsoft.Web/sites/${env('SERVICE_API_NAME')}`;
  const refresh = `https://management.azure.com${site}/config/configreferences/appsettings/refresh?api-version=${API}`;
  const list = `https://management.azure.com${site}/config/configreferences/appsettings?api-version=${API}`;
  const manual = `az rest --method post --url "${refresh}"`;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const posted = az(['rest', '--method', 'post', '--url', refresh]);
    if (posted.missing) {
      console.log(
        `Azure CLI not found. If the app reports a Key Vault reference as unresolved, run:\n  ${manual}`,
      );
      return;
    }
    const listed = az(['rest', '--method', 'get', '--url', list]);
    if (posted.ok && listed.ok) {
      const refs = JSON.parse(listed.text).value ?? [];
      const pending = refs.filter((r) => r.properties?.status !== 'Resolved');
      if (pending.length === 0) {
        console.log(`Key Vault references: ${refs.length} resolved.`);
        return;
      }
      console.log(
        `Key Vault references not resolved yet (attempt ${attempt}/${ATTEMPTS}): ` +
          pending.map((r) => `${r.name}=${r.properties?.status}`).join(', '),
      );
    } else {
      console.log(
        `Refreshing Key Vault references failed (attempt ${attempt}/${ATTEMPTS}): ${(posted.ok ? listed : posted).text.trim()}`,
      );
    }
    if (attempt < ATTEMPTS) await sleep(WAIT_MS);
  }
  console.log(
    `Some Key Vault references are still unresolved. Once the role assignments apply, run:\n  ${manual}`,
  );
}

main().catch((err) => {
  console.log(`refresh-key-vault-references: ${err.message}`);
});
