// A provision must not overwrite a stored secret with nothing (docs/delivery.md, "The azd
// environment in CI"): a pipeline whose azd environment lacks the GitHub App's key or webhook secret
// keeps the ones in Key Vault, and the app settings still point at them.
import type { Value } from './bicep';
import { Unknown } from './bicep';
import { appSettings, mainEvaluator, moduleParam, SCENARIOS } from './helpers';

const gh = SCENARIOS.github!;
const keyVaultSecrets = (overrides: Record<string, Value>) =>
  moduleParam(mainEvaluator(overrides), 'modules/keyvault.bicep', 'secrets') as Record<string, Value>;
const show = (v: Value | undefined) => (v instanceof Unknown ? v.text : String(v));

describe('secrets a provision does not pass', () => {
  it.each([
    ['private key', { githubAppPrivateKey: '' }, 'github-app-private-key', 'github-webhook-secret'],
    ['webhook secret', { githubWebhookSecret: '' }, 'github-webhook-secret', 'github-app-private-key'],
  ])(
    'an empty GitHub %s is not written over the stored one; the other still is',
    (_what, empty, kept, written) => {
      const secrets = keyVaultSecrets({ ...gh, ...empty });
      expect(Object.keys(secrets)).not.toContain(kept);
      expect(Object.keys(secrets)).toContain(written);
      // The setting still names the secret (no version), so it resolves to what Key Vault holds.
      const settings = appSettings({ ...gh, ...empty });
      expect(show(settings.GITHUB_APP_PRIVATE_KEY)).toMatch(/secrets\/github-app-private-key\/\)$/);
      expect(show(settings.GITHUB_WEBHOOK_SECRET)).toMatch(/secrets\/github-webhook-secret\/\)$/);
    },
  );

  it('writes no secret of any kind with an empty value', () => {
    for (const scenario of Object.values(SCENARIOS)) {
      for (const [name, value] of Object.entries(keyVaultSecrets(scenario)))
        expect([name, value]).not.toEqual([name, '']);
    }
    const blanks = { githubAppPrivateKey: '', githubWebhookSecret: '', databricksToken: '' };
    for (const [name, value] of Object.entries(keyVaultSecrets({ ...gh, ...blanks })))
      expect([name, value]).not.toEqual([name, '']);
  });
});
