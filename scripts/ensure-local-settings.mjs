// Creates local.settings.json from local.settings.example.json on first start, with a freshly
// generated approval-link signing key, so a new clone runs with two commands and no secret is
// ever committed. An existing local.settings.json is left alone.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const target = 'local.settings.json';
if (!existsSync(target)) {
  const settings = JSON.parse(readFileSync('local.settings.example.json', 'utf8'));
  const kid = settings.Values.APPROVAL_ACTIVE_KEY_ID ?? 'local1';
  settings.Values.APPROVAL_SIGNING_KEYS = JSON.stringify({ [kid]: randomBytes(32).toString('base64') });
  writeFileSync(target, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
  console.log(`created ${target} with a new approval signing key (git-ignored)`);
}
