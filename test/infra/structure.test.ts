// The Bicep in infra/ holds together the way the compiler would check it: it parses, every name
// it uses is declared, modules exist and get exactly their parameters, the parameters file and
// azure.yaml match main.bicep, and generated names fit Azure's naming rules.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  bodyOf,
  declsOf,
  Evaluator,
  literal,
  memberChains,
  propAt,
  tokensIn,
  unresolvedReferences,
  Unknown,
} from './bicep';
import type { Decl } from './bicep';
import { bicep, bicepPaths, INFRA, mainEvaluator, moduleDecl, readJson, ROOT, SCENARIOS } from './helpers';

const modulesOf = (path: string) => declsOf(bicep(path), 'module');

describe('every Bicep file', () => {
  it.each(bicepPaths())('%s parses and uses only declared names and known functions', (path) => {
    expect(unresolvedReferences(bicep(path))).toEqual([]);
  });

  it.each(bicepPaths())('%s pins resource types to a dated, non-preview API version', (path) => {
    for (const r of declsOf(bicep(path), 'resource')) {
      expect(r.target).toMatch(/^Microsoft\.[A-Za-z]+(\/[A-Za-z]+)+@\d{4}-\d{2}-\d{2}$/);
    }
  });

  it('uses one API version per resource type across all files', () => {
    const versions = new Map<string, Set<string>>();
    for (const path of bicepPaths()) {
      for (const r of declsOf(bicep(path), 'resource')) {
        const [type, version] = r.target!.split('@') as [string, string];
        versions.set(type, (versions.get(type) ?? new Set()).add(version));
      }
    }
    const mixed = [...versions].filter(([, v]) => v.size > 1).map(([t, v]) => `${t}: ${[...v].join(', ')}`);
    expect(mixed).toEqual([]);
  });

  it.each(bicepPaths())('%s gives every parameter a description', (path) => {
    const undocumented = declsOf(bicep(path), 'param')
      .filter((p) => !p.decorators.some((d) => d.name === 'description'))
      .map((p) => p.name);
    expect(undocumented).toEqual([]);
  });
});

describe('modules', () => {
  const calls: [string, Decl][] = bicepPaths().flatMap((path) =>
    modulesOf(path).map((m) => [path, m] as [string, Decl]),
  );

  it('main.bicep deploys every file in infra/modules', () => {
    const used = new Set(modulesOf('main.bicep').map((m) => m.target));
    expect(bicepPaths().filter((p) => p !== 'main.bicep' && !used.has(p))).toEqual([]);
  });

  it.each(calls.map(([path, m]) => [`${path} → ${m.target}`, path, m] as const))(
    '%s: the file exists and gets exactly its parameters',
    (_label, path, m) => {
      const target = join(dirname(join(INFRA, path)), m.target!);
      expect(existsSync(target)).toBe(true);
      const declared = declsOf(bicep(join(dirname(path), m.target!).replace(/^\.\//, '')), 'param');
      const passed = bodyOf(propAt(m.value, 'params'))?.props.map((p) => p.key) ?? [];
      const known = new Set(declared.map((p) => p.name));
      expect(passed.filter((name) => !known.has(name))).toEqual([]);
      const required = declared.filter((p) => !p.value && !p.typeText?.endsWith('?')).map((p) => p.name);
      expect(required.filter((name) => !passed.includes(name))).toEqual([]);
      // Modules deploy into the environment's resource group.
      expect(tokensIn(propAt(m.value, 'scope')).map((t) => t.text)).toEqual(
        path === 'main.bicep' ? ['rg'] : [],
      );
    },
  );

  it.each(bicepPaths())('%s reads only outputs its modules declare', (path) => {
    const file = bicep(path);
    const modules = new Map(declsOf(file, 'module').map((m) => [m.name, m.target!]));
    const missing: string[] = [];
    for (const decl of file.decls) {
      for (const chain of memberChains(tokensIn(decl.value))) {
        const target = modules.get(chain[0]!);
        if (!target || chain[1] !== 'outputs') continue;
        const outputs = declsOf(bicep(join(dirname(path), target)), 'output').map((o) => o.name);
        if (!outputs.includes(chain[2] ?? '')) missing.push(chain.join('.'));
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('main.bicep', () => {
  const main = bicep('main.bicep');
  const params = declsOf(main, 'param');

  it('targets the subscription and creates the resource group, tagged with the azd environment', () => {
    expect(literal(declsOf(main, 'targetScope')[0]?.value)).toBe('subscription');
    const groups = declsOf(main, 'resource');
    expect(groups.map((r) => r.target)).toEqual(['Microsoft.Resources/resourceGroups@2024-03-01']);
    const ev = mainEvaluator();
    expect(ev.variable('tags')).toEqual({ 'azd-env-name': 'sluice-dev' });
    expect(tokensIn(propAt(groups[0]!.value, 'tags')).map((t) => t.text)).toEqual(['tags']);
    expect(ev.node(propAt(groups[0]!.value, 'name')!, new Map())).toBe('rg-sluice-dev');
  });

  it('derives the resource token from subscription, environment and location', () => {
    const token = (env: string, location: string) =>
      mainEvaluator({ environmentName: env, location }).variable('resourceToken');
    expect(token('a', 'westeurope')).toMatch(/^[a-z2-7]{13}$/);
    expect(token('a', 'westeurope')).toBe(token('a', 'westeurope'));
    expect(token('a', 'westeurope')).not.toBe(token('b', 'westeurope'));
    expect(token('a', 'westeurope')).not.toBe(token('a', 'eastus2'));
  });

  it('declares environmentName and an azd location parameter', () => {
    const env = params.find((p) => p.name === 'environmentName');
    expect(env?.decorators.map((d) => d.name)).toEqual(expect.arrayContaining(['minLength', 'maxLength']));
    const location = params.find((p) => p.name === 'location')!;
    const metadata = location.decorators.find((d) => d.name === 'metadata')!;
    expect(mainEvaluator().node(metadata.args[0]!, new Map())).toEqual({ azd: { type: 'location' } });
  });

  it('names its outputs in UPPER_SNAKE for azd', () => {
    const outputs = declsOf(main, 'output').map((o) => o.name);
    expect(outputs.length).toBeGreaterThan(5);
    expect(outputs.filter((o) => !/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/.test(o))).toEqual([]);
    expect(outputs).toEqual(
      expect.arrayContaining(['AZURE_LOCATION', 'AZURE_TENANT_ID', 'SERVICE_API_NAME']),
    );
    // AZURE_CLIENT_ID in .azure/<env>/.env would make local SDK credentials impersonate the app.
    expect(outputs).not.toContain('AZURE_CLIENT_ID');
  });

  it('lets every generated resource name be overridden by a parameter', () => {
    const names = mainEvaluator().variable('names') as Record<string, string>;
    const overridable = Object.keys(names).filter((k) => !k.startsWith('ml'));
    const ev = mainEvaluator(
      Object.fromEntries(
        params
          .filter((p) => /Name$/.test(p.name) && p.name !== 'environmentName')
          .map((p) => [p.name, `custom-${p.name}`]),
      ),
    );
    const custom = ev.variable('names') as Record<string, string>;
    expect(overridable.filter((k) => !String(custom[k]).startsWith('custom-'))).toEqual([]);
  });

  it.each(Object.entries(SCENARIOS))('generates names Azure accepts (%s)', (_name, overrides) => {
    const ev = mainEvaluator({ environmentName: 'a-rather-long-environment-name-for-sluice', ...overrides });
    const n = ev.variable('names') as Record<string, string>;
    expect(n.storage).toMatch(/^[a-z0-9]{3,24}$/);
    expect(n.mlStorage).toMatch(/^[a-z0-9]{3,24}$/);
    expect(n.keyVault).toMatch(/^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/);
    expect(n.mlKeyVault).toMatch(/^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/);
    expect(n.cosmos).toMatch(/^[a-z0-9][a-z0-9-]{1,42}[a-z0-9]$/);
    expect(n.functionApp).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9-]{0,58}[a-zA-Z0-9]$/);
    expect(n.mlWorkspace).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$/);
    expect(n.resourceGroup!.length).toBeLessThanOrEqual(90);
    const container = ev.variable('deploymentContainerName');
    expect(container).toMatch(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/);
    // Every variable evaluates: no missing key in abbreviations.json or lib/resources.json.
    for (const v of declsOf(bicep('main.bicep'), 'var')) expect(() => ev.variable(v.name)).not.toThrow();
  });
});

describe('main.parameters.json', () => {
  const file = readJson<{ parameters: Record<string, { value: unknown }> }>(
    join(INFRA, 'main.parameters.json'),
  );
  const params = declsOf(bicep('main.bicep'), 'param');

  it('maps only parameters main.bicep declares', () => {
    const declared = new Set(params.map((p) => p.name));
    expect(Object.keys(file.parameters).filter((k) => !declared.has(k))).toEqual([]);
  });

  it('supplies every required parameter, except the secrets azd generates', () => {
    const generated = (p: Decl) => {
      const meta = p.decorators.find((d) => d.name === 'metadata');
      const value = meta && mainEvaluator().node(meta.args[0]!, new Map());
      return (
        p.decorators.some((d) => d.name === 'secure') &&
        p.typeText === 'string' &&
        (value as { azd?: { type?: string } } | undefined)?.azd?.type === 'generate'
      );
    };
    const required = params.filter((p) => !p.value);
    const missing = required.filter((p) => !(p.name in file.parameters) && !generated(p)).map((p) => p.name);
    expect(missing).toEqual([]);
    expect(required.filter(generated).map((p) => p.name)).toEqual([
      'approvalSigningKeyA',
      'approvalSigningKeyB',
      'notifyWebhookSecret',
    ]);
    // Generated secrets never come from the parameters file (that would put them in .env).
    expect(required.filter((p) => generated(p) && p.name in file.parameters)).toEqual([]);
  });

  it('takes the azd environment, location and principal from azd', () => {
    expect(file.parameters.environmentName?.value).toBe('${AZURE_ENV_NAME}');
    expect(file.parameters.location?.value).toBe('${AZURE_LOCATION}');
    expect(file.parameters.principalId?.value).toBe('${AZURE_PRINCIPAL_ID}');
    expect(file.parameters.principalType?.value).toBe('${AZURE_PRINCIPAL_TYPE}');
  });

  it('uses defaults that are valid values of the parameter', () => {
    for (const [name, { value }] of Object.entries(file.parameters)) {
      const match = /^\$\{[A-Z0-9_]+=(.*)\}$/.exec(String(value));
      if (!match) continue;
      const param = params.find((p) => p.name === name)!;
      const bicepDefault = mainEvaluator().param(name);
      const expected =
        param.typeText === 'bool' || param.typeText === 'int' ? String(bicepDefault) : bicepDefault;
      expect([name, match[1]]).toEqual([name, expected instanceof Unknown ? match[1] : expected]);
    }
  });
});

describe('azure.yaml', () => {
  const yaml = readFileSync(join(ROOT, 'azure.yaml'), 'utf8');

  it('declares the function service whose name the app carries as azd-service-name', () => {
    expect(yaml).toMatch(/^name: sluice$/m);
    const services = /^services:\n((?: {2,}.*\n?)+)/m.exec(yaml)?.[1] ?? '';
    const names = [...services.matchAll(/^ {2}([a-z0-9-]+):\s*$/gm)].map((m) => m[1]);
    expect(names).toEqual(['api']);
    expect(services).toMatch(/^ {4}host: function$/m);
    expect(services).toMatch(/^ {4}language: (ts|js)$/m);
    expect(services).toMatch(/^ {4}project: \.$/m);
    expect(mainEvaluator().variable('serviceName')).toBe('api');
    const site = declsOf(bicep('modules/functionapp.bicep'), 'resource').find((r) =>
      r.target?.startsWith('Microsoft.Web/sites@'),
    )!;
    const app = new Evaluator(bicep('modules/functionapp.bicep'), {
      tags: { 'azd-env-name': 'dev' },
      serviceName: 'api',
    });
    expect(app.node(propAt(site.value, 'tags')!, new Map())).toEqual({
      'azd-env-name': 'dev',
      'azd-service-name': 'api',
    });
    const passed = propAt(moduleDecl('modules/functionapp.bicep').value, 'params.serviceName')!;
    expect(mainEvaluator().node(passed, new Map())).toBe('api');
  });

  it('deploys the package the prepackage hook stages, with no remote build', () => {
    const services = /^services:\n((?: {2,}.*\n?)+)/m.exec(yaml)?.[1] ?? '';
    expect(services).toMatch(/^ {4}dist: \.deploy\/api$/m);
    expect(services).toMatch(/^ {4}remoteBuild: false$/m);
    expect(services).toMatch(
      /^ {6}prepackage:\n(?: {8,}.*\n)* {10}run: node infra\/hooks\/stage-package\.mjs$/m,
    );
    expect(existsSync(join(INFRA, 'hooks/stage-package.mjs'))).toBe(true);
  });

  it('needs azd 1.17.1 or later (AZURE_PRINCIPAL_TYPE substitution)', () => {
    expect(yaml).toMatch(/^requiredVersions:\n {2}azd: (['"])>= 1\.17\.1\1$/m);
    expect(readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8')).toMatch(/1\.17\.1/);
  });

  it('refreshes Key Vault references after provisioning, without failing the deployment', () => {
    const hooks = /^hooks:\n((?: {2,}.*\n?)+)/m.exec(yaml)?.[1] ?? '';
    expect(hooks).toMatch(/^ {2}postprovision:$/m);
    expect(hooks).toMatch(/run: node infra\/hooks\/refresh-key-vault-references\.mjs/);
    expect(hooks).toMatch(/continueOnError: true/);
    const script = readFileSync(join(INFRA, 'hooks/refresh-key-vault-references.mjs'), 'utf8');
    expect(script).toMatch(/config\/configreferences\/appsettings\/refresh/);
  });

  it('points azd at infra/main.bicep', () => {
    expect(yaml).toMatch(/^ {2}path: infra$/m);
    expect(yaml).toMatch(/^ {2}module: main$/m);
    expect(existsSync(join(INFRA, 'main.bicep'))).toBe(true);
  });
});

describe('.github/workflows/infra.yml', () => {
  const workflow = readFileSync(join(ROOT, '.github/workflows/infra.yml'), 'utf8');

  it('builds the Bicep and previews the deployment on pull requests, signing in with OIDC', () => {
    expect(workflow).toMatch(/^on:\n {2}pull_request:/m);
    expect(workflow).toMatch(/az bicep build --file infra\/main\.bicep/);
    expect(workflow).toMatch(/azd provision --preview --no-prompt/);
    expect(workflow).toMatch(/id-token: write/);
    expect(workflow).toMatch(/--federated-credential-provider github/);
    expect(workflow).toMatch(/npx jest test\/infra/);
    // No stored credential: nothing reads a client secret.
    expect(workflow).not.toMatch(/secrets\.|client-secret|AZURE_CREDENTIALS/);
  });
});

describe('.funcignore', () => {
  const ignored = readFileSync(join(ROOT, '.funcignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('leaves local data and settings out of the package, and keeps the production node_modules in', () => {
    // Remote build is off: the staged package carries its own production node_modules, and azd
    // refuses remoteBuild: false when .funcignore excludes node_modules.
    expect(readFileSync(join(ROOT, 'azure.yaml'), 'utf8')).toMatch(/^ {4}remoteBuild: false$/m);
    expect(ignored).toEqual(expect.arrayContaining(['local.settings.json', '.sluice/', '.azure/']));
    expect(ignored.filter((p) => /node_modules/.test(p))).toEqual([]);
  });

  it('keeps what the host needs', () => {
    const needed = ['package.json', 'package-lock.json', 'host.json', 'dist/', 'node_modules/'];
    for (const path of needed) {
      const hit = ignored.find((pattern) =>
        pattern.includes('*')
          ? new RegExp(`^${pattern.replace(/\./g, '\\.').replace(/\*/g, '[^/]*')}$`).test(path)
          : pattern === path || (pattern.endsWith('/') && path.startsWith(pattern)),
      );
      expect([path, hit]).toEqual([path, undefined]);
    }
  });
});
