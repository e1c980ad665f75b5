/**
 * The emergency override end to end through devhost over HTTP, with keys enforced and App Service
 * Authentication's principal header standing in for Easy Auth (APPROVAL_REQUIRE_SIGNIN=true):
 * without the Sluice.BreakGlass role the override is refused (403) and the attempt is in the audit
 * trail, nothing moved; with it production moves, every reviewer is told, the version reads
 * "override, review required" in the model API and the evidence pack, and the post-hoc review
 * gate runs and sends its review requests. Needs `dist/`.
 */
import { CosmosClient } from '@azure/cosmos';
import { COSMOS_EMULATOR_KEY } from '../../../devhost/services/wellKnown';
import resources from '../../../lib/resources.json';
import { ModelRegistry } from '../../../lib/registry/registry';
import type { AuditEntry } from '../../../lib/audit/chain';
import type { EvidencePack } from '../../../lib/evidence/pack';
import { main as sluice } from '../../../cli/sluice';
import type { PipelineHarness, Ports } from '../pipeline/harness';
import { freePorts, REVIEWER, startPipelineHarness, testPipeline } from '../pipeline/harness';

jest.setTimeout(300_000);

const MASTER = 'e2e-master-key-0123456789';
const FUNCTION_KEY = 'e2e-function-key-0123456789';
const MODEL = 'ovr-e2e';

const principal = (name: string, roles: string[]) =>
  Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'preferred_username',
      role_typ: 'roles',
      claims: [{ typ: 'preferred_username', val: name }, ...roles.map((r) => ({ typ: 'roles', val: r }))],
    }),
  ).toString('base64');

describe('emergency override through devhost', () => {
  let h: PipelineHarness;
  let ports: Ports;
  let client: CosmosClient;
  const key = { 'x-functions-key': FUNCTION_KEY };

  beforeAll(async () => {
    ports = await freePorts();
    h = await startPipelineHarness({
      ports,
      env: { DEVHOST_KEYS: `master=${MASTER},default=${FUNCTION_KEY}`, APPROVAL_REQUIRE_SIGNIN: 'true' },
    });
    const put = await h.api('PUT', `/api/pipelines/${MODEL}`, testPipeline(MODEL), key);
    expect(put.status).toBe(201);
    // Two registered versions, v1 in production (as an approved run would leave them).
    client = new CosmosClient({
      endpoint: `http://127.0.0.1:${ports.cosmos}`,
      key: COSMOS_EMULATOR_KEY,
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    const registry = new ModelRegistry(
      client.database(resources.cosmos.database).container(resources.cosmos.containers.models.name),
    );
    for (const v of [1, 2]) {
      await registry.registerVersion({
        modelName: MODEL,
        modelDigest: String(v).repeat(64),
        artifactUri: `models/${MODEL}/${v}.json`,
        datasetDigest: 'd'.repeat(64),
        metrics: { rmse: v },
        trainingSpec: {},
        algorithm: 'linear',
        runId: `seed-${v}`,
        tags: { pipeline: MODEL },
      });
    }
    await registry.moveAlias({
      modelName: MODEL,
      alias: 'production',
      to: 1,
      by: 'seed',
      approvalRef: 'seed',
    });
  });
  afterAll(async () => {
    client?.dispose();
    await h?.stop();
  });

  const override = (headers: Record<string, string>, version = 2) =>
    h.api(
      'POST',
      `/api/models/${MODEL}/override`,
      { version, reason: 'v1 answers NaN for new customers' },
      headers,
    );
  const production = async () => (await h.model(MODEL))?.aliases.production?.version;
  const auditKinds = async (): Promise<AuditEntry[]> => {
    const res = await h.api('GET', `/api/audit?subject=model/${MODEL}/2&limit=100`, undefined, key);
    return ((await res.json()) as { entries: AuditEntry[] }).entries;
  };

  it('without the Sluice.BreakGlass role: 403, the attempt audited, nothing moved', async () => {
    expect((await override({})).status).toBe(401); // no key: the host refuses before the app
    const res = await override({
      ...key,
      'x-ms-client-principal': principal('mallory@example.com', ['Sluice.Operator']),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe('break_glass_role_required');
    const refused = (await auditKinds()).filter((e) => e.kind === 'override.refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.actor).toBe('mallory@example.com');
    expect(await production()).toBe(1);
    // The CLI says the same.
    await expect(
      sluice(
        [
          'deploy',
          MODEL,
          '--version',
          '2',
          '--override',
          '--reason',
          'from the CLI without a role',
          '--url',
          h.url,
          '--key',
          FUNCTION_KEY,
        ],
        () => undefined,
      ),
    ).rejects.toThrow(/HTTP 403: break_glass_role_required/);
    expect(await production()).toBe(1);
  });

  it('with the role: deploys, tells every reviewer, marks the version, opens the review', async () => {
    const res = await override({
      ...key,
      'x-ms-client-principal': principal('oncall@example.com', ['Sluice.BreakGlass']),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { review: { runId: string; approvalId: string }; notified: string[] };
    expect(await production()).toBe(2);
    expect(body.notified.sort()).toEqual(['lead@example.com', REVIEWER]);

    const kinds = (await auditKinds()).map((e) => e.kind);
    expect(kinds).toContain('override.deployed');

    const model = (await (await h.api('GET', `/api/models/${MODEL}`)).json()) as {
      versions: { version: number; status?: string; override?: { review: string; by: string } }[];
    };
    const v2 = model.versions.find((v) => v.version === 2)!;
    expect(v2.status).toBe('override, review required');
    expect(v2.override).toMatchObject({ review: 'required', by: 'oncall@example.com' });

    const pack = (await (
      await h.api('GET', `/api/models/${MODEL}/versions/2/evidence`)
    ).json()) as EvidencePack;
    expect(pack.model.override?.label).toBe('override, review required');
    const html = await (
      await h.api('GET', `/api/models/${MODEL}/versions/2/evidence`, undefined, { accept: 'text/html' })
    ).text();
    expect(html).toContain('override, review required');

    // Every reviewer got the override notice at once, then the review gate's own request.
    const notices = (await h.messages(body.review.runId)).filter((m) => m.kind === 'override');
    expect(notices.map((m) => m.to).sort()).toEqual(['lead@example.com', REVIEWER]);
    const link = await h.link(body.review.runId, REVIEWER, 'request');
    expect(link).toContain('/api/approvals/');
    const approvals = client
      .database(resources.cosmos.database)
      .container(resources.cosmos.containers.approvals.name);
    const { resource } = await approvals
      .item(body.review.approvalId, body.review.runId)
      .read<{ status: string; requestedBy: string }>();
    expect(resource).toMatchObject({ status: 'pending', requestedBy: 'oncall@example.com' });
  });
});
