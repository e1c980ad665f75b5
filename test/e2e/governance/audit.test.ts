/**
 * Governance end to end through devhost over HTTP: two pipelines deployed at the same moment are
 * both in the audit chain, the chain verifies (API and `sluice audit verify`), each deployed version
 * has an evidence pack (JSON and printable HTML) that the approval page links, and an entry edited
 * directly in devhost's Cosmos emulator is named by verification. Needs `dist/`.
 */
import { CosmosClient } from '@azure/cosmos';
import { COSMOS_EMULATOR_KEY } from '../../../devhost/services/wellKnown';
import { main as sluice } from '../../../cli/sluice';
import resources from '../../../lib/resources.json';
import type { EvidencePack } from '../../../lib/evidence/pack';
import type { AuditEntry } from '../../../lib/audit/chain';
import type { PipelineHarness, Ports } from '../pipeline/harness';
import { freePorts, REVIEWER, startPipelineHarness, testPipeline } from '../pipeline/harness';

jest.setTimeout(300_000);

describe('audit trail and evidence pack through devhost', () => {
  let h: PipelineHarness;
  let ports: Ports;
  const runs: Record<string, string> = {};

  const cli = async (...args: string[]) => {
    const lines: string[] = [];
    const code = await sluice([...args, '--url', h.url], (l) => lines.push(l));
    return { code, out: lines.join('\n') };
  };

  beforeAll(async () => {
    ports = await freePorts();
    // A busy CI box can starve the training process's heartbeat for more than the harness's 5 s.
    h = await startPipelineHarness({ ports, env: { TRAINING_HEARTBEAT_STALE_SECONDS: '120' } });
    await h.put(
      testPipeline('gov-a', {
        owner: 'pricing-team@example.com',
        intendedUse: 'Suggests a wage band for job ads; not for individual pay decisions.',
      }),
    );
    await h.put(testPipeline('gov-b'));
    [runs.a, runs.b] = await Promise.all([h.start('gov-a'), h.start('gov-b')]);
    await Promise.all(
      [runs.a!, runs.b!].map((id) =>
        h.waitFor(id, 'approval', (r) => r.status === 'waiting_for_approval', 240_000),
      ),
    );
    // Both reviewers press Approve at once: the two deployments race for the next audit entry.
    await Promise.all([h.decide(runs.a!, 'approve', 'r2 holds up'), h.decide(runs.b!, 'approve', 'fine')]);
    const done = await Promise.all([h.finished(runs.a!, 120_000), h.finished(runs.b!, 120_000)]);
    expect(done.map((r) => r.status)).toEqual(['succeeded', 'succeeded']);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('chains both deployments and every approval event; the chain verifies', async () => {
    const res = await h.api('GET', '/api/audit?limit=500');
    expect(res.status).toBe(200);
    const { entries } = (await res.json()) as { entries: AuditEntry[] };
    const kinds = (model: string) =>
      entries
        .filter((e) => e.subject.startsWith(`model/${model}/`))
        .map((e) => (e.kind === 'alias.moved' ? `${e.kind}:${String(e.data.alias)}` : e.kind))
        .reverse();
    for (const m of ['gov-a', 'gov-b']) {
      // The run's registration moves `staging`; the approved deployment moves `production`.
      expect(kinds(m)).toEqual([
        'alias.moved:staging',
        'approval.requested',
        'approval.decided',
        'approval.approved',
        'alias.moved:production',
      ]);
    }
    expect(
      entries
        .filter((e) => e.kind === 'pipeline.changed')
        .map((e) => e.subject)
        .sort(),
    ).toEqual(['pipeline/gov-a', 'pipeline/gov-b']);
    // Newest first, each entry's prevHash is the next one's hash: one chain, no gap.
    for (let i = 0; i + 1 < entries.length; i++) {
      expect(entries[i]!.seq).toBe(entries[i + 1]!.seq + 1);
      expect(entries[i]!.prevHash).toBe(entries[i + 1]!.hash);
    }
    const verify = (await (await h.api('GET', '/api/audit?verify=true')).json()) as {
      valid: boolean;
      anchors: number;
    };
    expect(verify).toMatchObject({ valid: true });
    // Each deployment anchored the head.
    expect(verify.anchors).toBeGreaterThanOrEqual(1);
    const { code, out } = await cli('audit', 'verify');
    expect(code).toBe(0);
    expect(out).toMatch(/^valid: \d+ entries/);
  });

  it('serves the evidence pack of a deployed version as JSON', async () => {
    const res = await h.api('GET', '/api/models/gov-a/versions/1/evidence');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const p = (await res.json()) as EvidencePack;
    expect(p.pipeline).toMatchObject({ name: 'gov-a', owner: 'pricing-team@example.com' });
    expect(p.pipeline?.intendedUse).toMatch(/wage band/);
    expect(p.model).toMatchObject({ name: 'gov-a', version: 1, inProduction: true });
    expect(p.data.ingest).toMatchObject({ rows: 534, columns: 11 });
    expect(p.data.datasetDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(p.data.validation).toMatchObject({ passed: true });
    expect(p.data.profile?.length).toBe(11);
    expect(p.training).toMatchObject({ backend: 'local' });
    expect(p.training.jobId).toBeTruthy();
    expect(p.evaluation?.metrics.length).toBeGreaterThan(0);
    expect(p.evaluation?.policy.primaryMetric).toBeTruthy();
    expect(p.approvals).toHaveLength(1);
    expect(p.approvals[0]).toMatchObject({ status: 'approved', quorum: { required: 1, approvals: 1 } });
    expect(p.approvals[0]!.decisions[0]).toMatchObject({
      reviewer: REVIEWER,
      decision: 'approve',
      comment: 'r2 holds up',
    });
    expect(p.deployments.filter((d) => d.alias === 'production')).toEqual([
      expect.objectContaining({ from: null, to: 1, by: expect.stringMatching(/^approval:/) }),
    ]);
    expect(p.lineage).toMatchObject({
      dataset: { sha256: p.data.datasetDigest },
      run: { id: runs.a, pipeline: 'gov-a' },
      model: { name: 'gov-a', version: 1 },
      deployments: expect.arrayContaining([expect.objectContaining({ alias: 'production' })]),
    });
    expect(p.audit.entries.map((e) => e.kind)).toEqual([
      'alias.moved',
      'approval.requested',
      'approval.decided',
      'approval.approved',
      'alias.moved',
    ]);
    expect(p.audit.entries.every((e) => /^[0-9a-f]{64}$/.test(e.hash))).toBe(true);
    expect((await h.api('GET', '/api/models/gov-a/versions/9/evidence')).status).toBe(404);
  });

  it('serves it as one printable HTML page without script, and the approval page links it', async () => {
    const res = await h.api('GET', '/api/models/gov-a/versions/1/evidence', undefined, {
      accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const html = await res.text();
    expect(html).toContain('@media print');
    expect(html).not.toMatch(/<script|<link|src=/i);
    expect(html).toContain('pricing-team@example.com');
    expect(html).toContain('r2 holds up');
    const page = await (await fetch(await h.link(runs.a!))).text();
    expect(page).toContain('href="/api/models/gov-a/versions/1/evidence"');
  });

  it('names an entry edited directly in the Cosmos emulator', async () => {
    const client = new CosmosClient({
      endpoint: `http://127.0.0.1:${ports.cosmos}`,
      key: COSMOS_EMULATOR_KEY,
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    try {
      const container = client
        .database(resources.cosmos.database)
        .container(resources.cosmos.containers.audit.name);
      const { resources: docs } = await container.items
        .query<AuditEntry & { id: string; chain: string }>(
          'SELECT * FROM c WHERE c.type = "entry" AND c.kind = "approval.decided"',
        )
        .fetchAll();
      const target = docs.sort((a, b) => a.seq - b.seq)[0]!;
      await container
        .item(target.id, target.chain)
        .replace({ ...target, data: { ...target.data, comment: 'rubber stamp' } });
      const { code, out } = await cli('audit', 'verify');
      expect(code).toBe(1);
      expect(out).toContain(`NOT VALID: entry ${target.seq} edited`);
    } finally {
      client.dispose();
    }
  });
});
