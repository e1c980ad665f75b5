/**
 * `sluice pipelines validate | plan | apply DIR` against the real pipeline endpoints (putPipeline,
 * getPipeline, listPipelines) and the real PipelineStore on the Cosmos emulator, served over
 * loopback HTTP as the Functions host would: what the CLI sends is what the server checks.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { applyLines, applyPlan, makePlan, readDefinitions } from '../../../cli/pipelinesAsCode';
import { main } from '../../../cli/sluice';
import { getPipeline } from '../../../functions/getPipeline';
import { listPipelines } from '../../../functions/listPipelines';
import { putPipeline } from '../../../functions/putPipeline';
import { withProblems } from '../../../functions/support/http';
import { loadConfig } from '../../../lib/config';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import type { CosmosEmulator } from '../../support/emulators';
import { startCosmos } from '../../support/emulators';
import { repoRoot } from '../../support/devhost';

let cosmos: CosmosEmulator;
let services: Services;
let server: Server;
let url: string;
let work: string;

/** The three pipeline routes, each request turned into the HttpRequest the Functions host builds. */
function serve(s: Services): Server {
  const routes = {
    list: withProblems(listPipelines(s)),
    get: withProblems(getPipeline(s)),
    put: withProblems(putPipeline(s)),
  };
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://localhost');
      const m = /^\/api\/pipelines(?:\/([^/]+))?$/.exec(u.pathname);
      const name = m?.[1] ? decodeURIComponent(m[1]) : undefined;
      const handler =
        m && !name && req.method === 'GET'
          ? routes.list
          : name && req.method === 'GET'
            ? routes.get
            : name && req.method === 'PUT'
              ? routes.put
              : undefined;
      if (!handler) {
        res.writeHead(404).end();
        return;
      }
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
      );
      const request = new HttpRequest({
        method: req.method!,
        url: `http://localhost${req.url}`,
        headers,
        params: name ? { name } : {},
        ...(chunks.length ? { body: { string: Buffer.concat(chunks).toString('utf8') } } : {}),
      });
      void handler(request, new InvocationContext({ logHandler: () => undefined })).then(
        (r: HttpResponseInit) => {
          res.writeHead(r.status ?? 200, {
            'content-type': 'application/json',
            ...(r.headers as Record<string, string> | undefined),
          });
          res.end(r.jsonBody === undefined ? undefined : JSON.stringify(r.jsonBody));
        },
      );
    });
  });
}

beforeAll(async () => {
  cosmos = await startCosmos();
  services = await createServices(
    loadConfig({
      COSMOS_ENDPOINT: cosmos.endpoint,
      COSMOS_KEY: cosmos.key,
      ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
    }),
    { prepare: false },
  );
  await services.cosmos.ensure();
  server = serve(services);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.close();
  await cosmos?.stop();
});

beforeEach(() => (work = mkdtempSync(path.join(tmpdir(), 'sluice-as-code-'))));
afterEach(() => rmSync(work, { recursive: true, force: true }));

const wages = () =>
  JSON.parse(readFileSync(path.join(repoRoot, 'pipelines', 'wages.json'), 'utf8')) as Record<
    string,
    unknown
  > & {
    evaluation: Record<string, unknown>;
    training: Record<string, unknown>;
  };

/** Stores a version directly, as the server would have (the schema's output), as someone else. */
const putOnServer = (name: string, over: Record<string, unknown> = {}) =>
  services.pipelines.put(
    name,
    pipelineDefinitionSchema.parse({ ...wages(), name, ...over }),
    'other',
    new Date(),
  );

/** A folder of definitions: file name → JSON value (written as JSON) or text (written as is). */
function folder(files: Record<string, unknown>): string {
  const dir = mkdtempSync(path.join(work, 'defs-'));
  for (const [f, v] of Object.entries(files))
    writeFileSync(path.join(dir, f), typeof v === 'string' ? v : JSON.stringify(v, null, 2));
  return dir;
}

async function sluice(...argv: string[]): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await main([...argv, '--url', url], (l) => lines.push(l));
  return { code, text: lines.join('\n') };
}

const unique = (base: string) => `${base}-${Math.random().toString(36).slice(2, 8)}`;

describe('sluice pipelines validate DIR (offline)', () => {
  it('accepts the repository’s own pipelines/ folder, JSON and YAML', async () => {
    const lines: string[] = [];
    // No --url: validate never calls the server.
    const code = await main(['pipelines', 'validate', path.join(repoRoot, 'pipelines')], (l) =>
      lines.push(l),
    );
    expect(code).toBe(0);
    expect(lines.join('\n')).toMatch(/wages-boosted\.yaml: pipeline wages-boosted/);
    expect(lines.at(-1)).toMatch(/^2 valid definitions in /);
  });

  it('names the file and the field of every problem, cross-field checks included, and exits 1', async () => {
    const bad = wages();
    bad.training.features = ['education', 'shoe_size'];
    const dir = folder({
      'wages.json': bad,
      'typo.yaml': 'name: typo\ndataset: [1\n',
      'dup.json': { ...wages(), description: 'same name as wages.json' },
    });
    const lines: string[] = [];
    const code = await main(['pipelines', 'validate', dir], (l) => lines.push(l));
    expect(code).toBe(1);
    const f = (n: string) => path.join(dir, n);
    expect(lines).toContain(`✖ ${f('wages.json')}: training.features.1: "shoe_size" is not a dataset column`);
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^✖ ${f('typo.yaml')}: \\(yaml\\): .+ at line \\d+, column \\d+$`)),
    );
    // dup.json sorts first, so wages.json is the duplicate; it is also invalid, which is reported.
    expect(lines.join('\n')).toMatch(/problems? in /);
  });

  it('refuses two files defining one pipeline, naming both', async () => {
    const dir = folder({ 'a.json': wages(), 'b.json': wages() });
    const { problems } = await readDefinitions(dir);
    expect(problems).toEqual([
      {
        file: path.join(dir, 'b.json'),
        field: 'name',
        message: `pipeline "wages" is also defined in ${path.join(dir, 'a.json')}`,
      },
    ]);
  });
});

describe('sluice pipelines plan / apply DIR against the deployed pipelines', () => {
  it('plans new pipelines, applies them, then finds nothing to change; --detailed-exitcode says so', async () => {
    const a = unique('churn');
    const b = unique('fraud');
    const dir = folder({
      [`${a}.json`]: { ...wages(), name: a },
      // No "name": named after its file, as the server names a body after its URL.
      [`${b}.yaml`]: readFileSync(path.join(repoRoot, 'pipelines', 'wages-boosted.yaml'), 'utf8').replace(
        /^name: .*$/m,
        '',
      ),
    });
    let r = await sluice('pipelines', 'plan', dir, '--detailed-exitcode');
    expect(r.code).toBe(2);
    expect(r.text).toContain(`+ ${a} (${path.join(dir, `${a}.json`)}): new pipeline`);
    expect(r.text).toContain(`+ ${b} (${path.join(dir, `${b}.yaml`)}): new pipeline`);
    expect(r.text).toMatch(/Plan: 2 to create, 0 to change, 0 unchanged, \d+ only on the server\./);
    expect((await sluice('pipelines', 'plan', dir)).code).toBe(0); // without the flag: 0

    r = await sluice('pipelines', 'apply', dir);
    expect(r.code).toBe(0);
    expect(r.text).toContain(`✔ ${a}: created, now version 1`);
    expect(r.text).toContain(`✔ ${b}: created, now version 1`);
    expect((await services.pipelines.get(b))?.definition.training.algorithm).toBe('gradient_boosting');

    r = await sluice('pipelines', 'plan', dir, '--detailed-exitcode');
    expect(r.code).toBe(0);
    expect(r.text).toContain(`= ${a} (${path.join(dir, `${a}.json`)}): unchanged (version 1)`);
    expect((await sluice('pipelines', 'apply', dir)).text).toMatch(/nothing to apply$/);
    expect((await services.pipelines.versions(a)).length).toBe(1);
  });

  it('shows each changed field old → new, reports pipelines only on the server and never deletes them', async () => {
    const name = unique('wages');
    const other = unique('legacy');
    await putOnServer(name);
    await putOnServer(other);
    const changed = { ...wages(), name, description: undefined };
    changed.evaluation = { ...changed.evaluation, threshold: 0.2 };
    changed.training = { ...changed.training, timeLimitSeconds: 600 };
    const dir = folder({ [`${name}.json`]: changed });

    const r = await sluice('pipelines', 'plan', dir, '--detailed-exitcode');
    expect(r.code).toBe(2);
    const block = r.text.split('\n');
    const at = block.indexOf(`~ ${name} (${path.join(dir, `${name}.json`)}): version 1 → 2`);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(block.slice(at + 1, at + 4)).toEqual([
      expect.stringMatching(/^ {4}- description: "Hourly wage from education/),
      '    ~ evaluation.threshold: 0.1 → 0.2',
      '    ~ training.timeLimitSeconds: 300 → 600',
    ]);
    expect(r.text).toContain(
      `? ${other}: on the server (version 1) but not in ${dir}; kept (apply never deletes)`,
    );

    const json = await sluice('pipelines', 'plan', dir, '--json');
    const plan = JSON.parse(json.text) as {
      pipelines: { name: string; action: string; changes: unknown[] }[];
    };
    expect(plan.pipelines.find((p) => p.name === name)).toMatchObject({
      action: 'update',
      changes: expect.arrayContaining([
        { path: 'evaluation.threshold', kind: 'changed', old: 0.1, new: 0.2 },
      ]),
    });

    const applied = await sluice('pipelines', 'apply', dir);
    expect(applied.code).toBe(0);
    expect(applied.text).toContain(`✔ ${name}: updated, now version 2`);
    expect((await services.pipelines.get(name))?.definition.evaluation.threshold).toBe(0.2);
    expect(await services.pipelines.get(other)).toBeDefined();
  });

  it('refuses a change made on the server after the plan, stops there and says what was applied', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((x) => unique(`race-${x}`)) as [string, string, string];
    for (const n of [a, b]) await putOnServer(n);
    const edit = (n: string) => ({ ...wages(), name: n, description: `edited ${n}` });
    const dir = folder({ [`${a}.json`]: edit(a), [`${b}.json`]: edit(b), [`${c}.json`]: edit(c) });
    const ctx = { url, key: undefined, json: false, out: () => undefined };
    const { definitions } = await readDefinitions(dir);
    const plan = await makePlan(ctx, definitions);
    // Someone else changes b between the plan and the apply.
    await putOnServer(b, { description: 'theirs' });

    const result = await applyPlan(ctx, plan, definitions);
    expect(result.applied).toEqual([{ name: a, action: 'update', version: 2 }]);
    expect(result.failed).toMatchObject({ name: b, status: 412, code: 'pipeline_version_mismatch' });
    expect(result.notAttempted).toEqual([c]);
    const lines = applyLines(result);
    expect(lines[1]).toMatch(
      new RegExp(`^✖ ${b}: HTTP 412: changed on the server since the plan read version 1: .*run plan again$`),
    );
    expect(lines.slice(2)).toEqual([`applied before the error: ${a} (version 2)`, `not attempted: ${c}`]);
    // Theirs is kept, and c was never created.
    expect((await services.pipelines.get(b))?.definition.description).toBe('theirs');
    expect(await services.pipelines.get(c)).toBeUndefined();
  });

  it('a pipeline created by someone else after the plan is not overwritten (If-None-Match)', async () => {
    const n = unique('late');
    const dir = folder({ [`${n}.json`]: { ...wages(), name: n } });
    const r0 = await sluice('pipelines', 'plan', dir);
    expect(r0.text).toContain(`+ ${n}`);
    const ctx = { url, key: undefined, json: false, out: () => undefined };
    const { definitions } = await readDefinitions(dir);
    const plan = await makePlan(ctx, definitions);
    await putOnServer(n, { description: 'first' });
    const result = await applyPlan(ctx, plan, definitions);
    expect(result.failed).toMatchObject({ name: n, status: 412 });
    expect((await services.pipelines.versions(n)).length).toBe(1);
  });

  it('PUT refuses a malformed If-Match or both conditions with 400, naming the header', async () => {
    const n = unique('headers');
    const put = (headers: Record<string, string>) =>
      fetch(`${url}/api/pipelines/${n}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ ...wages(), name: n }),
      });
    const bad: Record<string, string>[] = [
      { 'if-match': 'latest' },
      { 'if-match': '"1"', 'if-none-match': '*' },
      { 'if-none-match': '"1"' },
    ];
    for (const headers of bad) {
      const res = await put(headers);
      expect([res.status, await res.json()]).toEqual([
        400,
        expect.objectContaining({ code: 'invalid_if_match', field: 'If-Match' }),
      ]);
    }
    expect(await services.pipelines.get(n)).toBeUndefined();
    const created = await put({ 'if-none-match': '*' });
    expect([created.status, created.headers.get('etag')]).toEqual([201, '"1"']);
    expect((await put({ 'if-none-match': '*' })).status).toBe(412);
    expect((await put({ 'if-match': 'W/"1"' })).status).toBe(201);
  });

  it('invalid definitions send nothing: apply exits 1 before any request', async () => {
    const n = unique('never');
    const bad = { ...wages(), name: n, evaluation: { primaryMetric: 'nonsense' } };
    const dir = folder({ [`${n}.json`]: bad });
    cpSync(path.join(repoRoot, 'pipelines', 'wages.json'), path.join(dir, 'wages.json'));
    const r = await sluice('pipelines', 'apply', dir);
    expect(r.code).toBe(1);
    expect(r.text).toMatch(/nothing was sent to Sluice$/);
    expect(await services.pipelines.get(n)).toBeUndefined();
  });
});
