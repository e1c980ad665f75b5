/**
 * The console's Approvals, Models and Pipelines pages in headless Chromium after real pipeline
 * runs on devhost: every page at desktop and phone widths with no console error and no page-wide
 * sideways scroll, axe-core with no serious or critical violation, the numbers on the page equal
 * to the API's, and the operator actions done with the keyboard or a click for real — roll back
 * production, pause and resume the schedule, run now on an uploaded file — with their effect read
 * back through the API. Needs `dist/` (npm test builds it) and Debian's chromium.
 */
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { COSMOS_EMULATOR_KEY } from '../../../devhost/services/wellKnown';
import { fmt } from '../../../lib/console';
import type { MonitoringDoc, ProposalDoc } from '../../../lib/monitoring/records';
import { MonitoringStore } from '../../../lib/monitoring/store';
import type { PipelineHarness, Ports } from '../pipeline/harness';
import { freePorts, startPipelineHarness, testPipeline, WAGES_CSV } from '../pipeline/harness';
import { cosmosStoreOn } from '../../support/emulators';
import type { ViewportName } from '../../support/browser';
import { axeViolations, launchChromium, openContext, tabTo } from '../../support/browser';

jest.setTimeout(600_000);

type Json = Record<string, unknown>;
const NAME = 'console-e2e';

describe('console: approvals, models and pipelines in a browser', () => {
  let h: PipelineHarness;
  let ports: Ports;
  let browser: Browser;
  let pendingRun: string;

  const alpha = (a: number) =>
    testPipeline(NAME, {
      training: { ...(testPipeline(NAME).training as Json), hyperparameters: { alpha: a } },
      schedule: { cron: '0 0 3 * * *', source: { blob: 'datasets/files/console-e2e.csv' } },
    });

  const approvedRun = async () => {
    const id = await h.start(NAME);
    await h.waitFor(id, 'the approval gate', (r) => r.status === 'waiting_for_approval');
    await h.decide(id, 'approve', 'checked in the console test');
    expect((await h.finished(id)).status).toBe('succeeded');
    return id;
  };

  beforeAll(async () => {
    // A generous heartbeat limit: training shares the machine with Chromium here.
    // Fixed ports: the monitoring test writes the monitoring timer's document into devhost's Cosmos.
    ports = await freePorts();
    [h, browser] = await Promise.all([
      startPipelineHarness({ ports, env: { TRAINING_HEARTBEAT_STALE_SECONDS: '120' } }),
      launchChromium(),
    ]);
    // Two approved deployments (v1, v2), then a third run left waiting for approval.
    for (const a of [1, 1.05]) {
      await h.put(alpha(a));
      await approvedRun();
    }
    await h.put(alpha(1.1));
    pendingRun = await h.start(NAME);
    await h.waitFor(pendingRun, 'the approval gate', (r) => r.status === 'waiting_for_approval');
  });
  afterAll(async () => {
    await Promise.all([browser?.close(), h?.stop()]);
  });

  const pages = [
    '/approvals',
    '/models',
    `/models/${NAME}`,
    '/pipelines',
    `/pipelines/${NAME}`,
    `/pipelines/${NAME}?from=1&to=3`,
  ];

  for (const viewport of ['desktop', 'phone'] as ViewportName[]) {
    it(`opens every page at ${viewport} width with no error, no sideways scroll and no serious axe violation`, async () => {
      const { context, page, errors } = await openContext(browser, viewport);
      try {
        for (const path of pages) {
          const res = await page.goto(`${h.url}${path}`);
          expect([path, res?.status()]).toEqual([path, 200]);
          expect(await page.locator('h1').first().isVisible()).toBe(true);
          // Nothing sticks out sideways (wide tables scroll inside their own box): name any element that does.
          const wide = await page.evaluate<string[]>(`[...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !e.closest('.scroll'))
            .slice(0, 5).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))`);
          expect([path, wide]).toEqual([path, []]);
          const serious = (await axeViolations(browser, page)).filter(
            (v) => v.impact === 'serious' || v.impact === 'critical',
          );
          expect([path, serious]).toEqual([path, []]);
        }
        expect(errors).toEqual([]);
      } finally {
        await context.close();
      }
    });
  }

  it('shows the numbers the API answers', async () => {
    const model = (await (await h.api('GET', `/api/models/${NAME}`)).json()) as {
      latestVersion: number;
      aliases: Record<string, { version: number }>;
      versions: { version: number; metrics: Record<string, number | null> }[];
    };
    const { context, page, errors } = await openContext(browser, 'desktop');
    try {
      await page.goto(`${h.url}/models/${NAME}`);
      expect(await page.locator('[data-field=production]').innerText()).toBe(
        `v${model.aliases.production!.version}`,
      );
      expect(await page.locator('[data-field=latest]').innerText()).toBe(`v${model.latestVersion}`);
      for (const v of model.versions) {
        for (const [metric, value] of Object.entries(v.metrics)) {
          const cell = page.locator(`tr[data-version="${v.version}"] td[data-metric="${metric}"]`);
          expect(await cell.innerText()).toBe(fmt(value));
        }
      }
      // One chart point per version with a value for the primary metric, at the registered value.
      const charted = await page.locator('svg.trend').first().getAttribute('data-metric');
      const points = await page
        .locator('svg.trend')
        .first()
        .locator('g.pt')
        .evaluateAll((gs) =>
          gs.map((g) => [Number(g.getAttribute('data-version')), Number(g.getAttribute('data-value'))]),
        );
      expect(points).toEqual(
        model.versions
          .filter((v) => typeof v.metrics[charted!] === 'number')
          .map((v) => [v.version, v.metrics[charted!]])
          .sort((a, b) => (a[0] as number) - (b[0] as number)),
      );

      const pipeline = (await (await h.api('GET', `/api/pipelines/${NAME}`)).json()) as {
        version: number;
        versions: { version: number }[];
      };
      await page.goto(`${h.url}/pipelines`);
      expect(await page.locator(`tr[data-pipeline="${NAME}"] td.n`).innerText()).toBe(`v${pipeline.version}`);
      await page.goto(`${h.url}/pipelines/${NAME}?from=1&to=3`);
      expect(await page.locator('tr[data-version]').count()).toBe(pipeline.versions.length);
      expect(await page.locator('table.diff').innerText()).toContain('training.hyperparameters.alpha');

      // The pending approval is in the inbox with its reviewers' links (the local console is open).
      await page.goto(`${h.url}/approvals`);
      const row = page.locator('tr[data-approval]', { hasText: pendingRun });
      expect(await row.count()).toBe(1);
      const href = await row.locator('a.button').first().getAttribute('href');
      expect(href).toMatch(/^\/api\/approvals\//);
      expect((await fetch(`${h.url}${href}`)).status).toBe(200);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('rolls production back with the keyboard alone, and the API shows the move', async () => {
    const before = await h.model(NAME);
    expect(before?.aliases.production?.version).toBe(2);
    const { context, page, errors } = await openContext(browser, 'desktop');
    try {
      await page.goto(`${h.url}/models/${NAME}`);
      // The skip link comes first and moves focus to the content.
      await page.keyboard.press('Tab');
      expect(await page.evaluate<string>('document.activeElement.textContent')).toBe('Skip to content');
      expect(await tabTo(page, '#rollback-reason')).toBe(true);
      await page.keyboard.type('v2 answers slowly in production');
      expect(await tabTo(page, '#rollback-form button[type=submit]')).toBe(true);
      await Promise.all([page.waitForURL(/done=rollback/), page.keyboard.press('Enter')]);
      expect(await page.locator('.notice').innerText()).toContain('rolled back to v1');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
    const after = (await h.model(NAME)) as unknown as {
      aliases: Record<string, { version: number }>;
      aliasHistory: { alias: string; to: number; by: string; reason: string }[];
    };
    expect(after.aliases.production?.version).toBe(1);
    expect(after.aliasHistory.at(-1)).toMatchObject({
      alias: 'production',
      to: 1,
      by: 'local',
      reason: 'rollback: v2 answers slowly in production',
    });
  });

  it('pauses and resumes the schedule with clicks (phone), and the API shows each state', async () => {
    const { context, page, errors } = await openContext(browser, 'phone');
    const state = async () =>
      ((await (await h.api('GET', `/api/pipelines/${NAME}`)).json()) as { scheduleState: Json | null })
        .scheduleState;
    try {
      await page.goto(`${h.url}/pipelines/${NAME}`);
      await page.fill('#schedule-reason', 'upstream table is being rebuilt');
      await Promise.all([page.waitForURL(/done=paused/), page.click('#schedule-form button')]);
      expect(await page.locator('[data-field=schedule-state]').innerText()).toContain('paused');
      expect(await state()).toMatchObject({
        paused: true,
        by: 'local',
        reason: 'upstream table is being rebuilt',
      });
      await Promise.all([page.waitForURL(/done=resumed/), page.click('#schedule-form button')]);
      expect(await state()).toMatchObject({ paused: false, by: 'local' });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('runs now on a file uploaded through the form', async () => {
    const { context, page, errors } = await openContext(browser, 'desktop');
    try {
      await page.goto(`${h.url}/pipelines/${NAME}`);
      await page.setInputFiles('#run-file', {
        name: 'wages.csv',
        mimeType: 'text/csv',
        buffer: readFileSync(WAGES_CSV),
      });
      const [posted] = await Promise.all([
        page.waitForResponse(
          (r) => r.request().method() === 'POST' && r.url().endsWith(`/pipelines/${NAME}/run`),
        ),
        page.click('#run-form button'),
      ]);
      // 303 to the new run's page.
      expect(posted.status()).toBe(303);
      const location = (await posted.headerValue('location')) ?? '';
      // The new run's page names its pipeline (one point read; docs/console.md, "Speed").
      expect(location).toMatch(new RegExp(`^/runs/${NAME}/[^/?]+$`));
      const runId = decodeURIComponent(location.split('/').pop()!);
      const run = await h.run(runId);
      expect(run).toMatchObject({ pipeline: NAME, trigger: { kind: 'http', by: 'local' } });
      expect(run.source).toMatchObject({ kind: 'upload', format: 'csv' });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('model page: run links name the pipeline, the MLflow zip comes through the console', async () => {
    const model = (await (await h.api('GET', `/api/models/${NAME}`)).json()) as {
      versions: { version: number; runId: string }[];
    };
    const { context, page, errors } = await openContext(browser, 'desktop');
    try {
      await page.goto(`${h.url}/models/${NAME}`);
      const runHrefs = await page
        .locator('main a[href^="/runs/"]')
        .evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      expect(runHrefs.length).toBeGreaterThan(0);
      for (const href of runHrefs) expect(href).toMatch(new RegExp(`^/runs/${NAME}/[^/?]+$`));
      // The run document's console link is the fast path too; the old id-only path redirects there.
      const v1 = model.versions.find((v) => v.version === 1)!;
      const doc = (await (await h.api('GET', `/api/runs/${v1.runId}`)).json()) as {
        links: { console: string };
      };
      expect(doc.links.console).toBe(`/runs/${NAME}/${v1.runId}`);
      const old = await fetch(`${h.url}/runs/${v1.runId}`, { redirect: 'manual' });
      expect([old.status, old.headers.get('location')]).toEqual([301, doc.links.console]);

      // The zip link goes through the console and answers the API's bytes and digest.
      const zipHref = await page.locator('a[data-mlflow-zip="1"]').getAttribute('href');
      expect(zipHref).toBe(`/models/${NAME}/versions/1/mlflow`);
      const [viaConsole, viaApi] = await Promise.all([
        fetch(`${h.url}${zipHref}`),
        h.api('GET', `/api/models/${NAME}/versions/1/mlflow`),
      ]);
      expect([viaConsole.status, viaApi.status]).toEqual([200, 200]);
      expect(viaConsole.headers.get('content-type')).toBe('application/zip');
      expect(viaConsole.headers.get('x-sluice-model-digest')).toBe(
        viaApi.headers.get('x-sluice-model-digest'),
      );
      const [a, b] = await Promise.all([viaConsole.arrayBuffer(), viaApi.arrayBuffer()]);
      expect(a.byteLength).toBeGreaterThan(100);
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
      // An unknown version is a console page naming it, not a problem document.
      const missing = await fetch(`${h.url}/models/${NAME}/versions/99/mlflow`);
      expect(missing.status).toBe(404);
      expect(missing.headers.get('content-type')).toMatch(/text\/html/);
      expect(await missing.text()).toContain('has no version 99');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('model page: monitoring shows what GET /api/models/{name}/monitoring answers', async () => {
    expect((await h.api('GET', `/api/models/${NAME}/monitoring`)).status).toBe(404);
    const { context, page, errors } = await openContext(browser, 'phone');
    try {
      await page.goto(`${h.url}/models/${NAME}`);
      expect(await page.locator('[data-mon=none]').count()).toBe(1);

      // What the monitoring timer writes after a window of shifted traffic (lib/monitoring/compute.ts).
      const store = new MonitoringStore(
        cosmosStoreOn({ endpoint: `http://127.0.0.1:${ports.cosmos}`, key: COSMOS_EMULATOR_KEY }),
      );
      const now = Date.now();
      const iso = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
      const metrics = (value: number, threshold: number) => ({
        psi: { value, threshold, drifted: value > threshold },
      });
      const doc: MonitoringDoc = {
        id: 'monitoring',
        kind: 'monitoring',
        modelName: NAME,
        pipeline: NAME,
        version: 1,
        window: { from: iso(60), to: iso(0) },
        computedAt: iso(0),
        samples: { requests: 240, rows: 240 },
        traffic: { requests: 2400, errors: 3, errorRate: 3 / 2400, latencyP50Ms: 4.2, latencyP99Ms: 31.5 },
        featureDrift: {
          status: 'drifted',
          driftedShare: 0.5,
          driftedColumns: ['age'],
          criticalDrifted: [],
          rule: 'share of drifted features > 0.3',
          columns: [
            {
              column: 'age',
              status: 'drifted',
              referenceCount: 400,
              currentCount: 240,
              metrics: metrics(0.42, 0.2),
            },
            {
              column: 'hours',
              status: 'stable',
              referenceCount: 400,
              currentCount: 240,
              metrics: metrics(0.03, 0.2),
            },
          ],
        },
        predictionDrift: { psi: 0.18 },
        live: {
          metric: 'mae',
          labels: 40,
          value: 1.9,
          ci: { lower: 1.5, upper: 2.4, confidence: 0.95 },
          since: iso(600),
        },
        finding: {
          drifted: true,
          reasons: ['feature drift: age drifted (share of drifted features > 0.3)'],
          proposal: { id: 'p-e2e' },
        },
      };
      const proposal: ProposalDoc = {
        id: 'proposal-p-e2e',
        kind: 'proposal',
        modelName: NAME,
        pipeline: NAME,
        state: 'dismissed',
        createdAt: iso(1),
        evidence: {
          window: doc.window,
          version: 1,
          reasons: doc.finding.reasons,
          driftedColumns: ['age'],
          predictionPsi: 0.18,
          samples: 240,
        },
        reviewers: ['reviewer@example.com'],
        notified: [],
        decision: {
          decision: 'dismiss',
          by: 'reviewer@example.com',
          at: iso(0),
          reason: 'a known seasonal shift',
        },
      };
      await store.put(doc);
      expect(await store.createProposal(proposal)).toBe(true);

      const api = (await (await h.api('GET', `/api/models/${NAME}/monitoring`)).json()) as MonitoringDoc & {
        proposals: ProposalDoc[];
      };
      await page.goto(`${h.url}/models/${NAME}`);
      const text = (sel: string) => page.locator(`[data-mon=${sel}]`).innerText();
      expect(await text('requests')).toBe(String(api.traffic.requests));
      expect(await text('errorRate')).toBe(`${fmt(api.traffic.errorRate! * 100)} %`);
      expect(await text('p50')).toBe(`${fmt(api.traffic.latencyP50Ms)} ms`);
      expect(await text('p99')).toBe(`${fmt(api.traffic.latencyP99Ms)} ms`);
      for (const c of api.featureDrift.columns) {
        const psi = page.locator(`tr[data-feature="${c.column}"] [data-metric=psi]`);
        expect(Number(await psi.getAttribute('data-value'))).toBe(c.metrics.psi!.value);
      }
      expect(Number(await page.locator('[data-mon=predictionPsi]').getAttribute('data-value'))).toBe(
        api.predictionDrift.psi,
      );
      expect(await text('live')).toContain(
        `${fmt(api.live!.value)} (95 % CI ${fmt(api.live!.ci.lower)} to ${fmt(api.live!.ci.upper)}) from ${api.live!.labels} labels`,
      );
      expect(await page.locator('tr[data-proposal]').count()).toBe(api.proposals.length);
      expect(await page.locator(`tr[data-proposal="${proposal.id}"]`).innerText()).toContain(
        'a known seasonal shift',
      );
      const serious = (await axeViolations(browser, page)).filter(
        (v) => v.impact === 'serious' || v.impact === 'critical',
      );
      expect(serious).toEqual([]);
      const wide = await page.evaluate<number>(`[...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !e.closest('.scroll')).length`);
      expect(wide).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('an emergency override marks the version on the model page, the runs list and the run page', async () => {
    const model = (await (await h.api('GET', `/api/models/${NAME}`)).json()) as {
      aliases: Record<string, { version: number }>;
      versions: { version: number; runId: string }[];
    };
    const target = model.versions
      .filter((v) => v.version !== model.aliases.production?.version)
      .sort((x, y) => y.version - x.version)[0]!;
    // devhost without keys: the admin-level route is open, the actor is the master key.
    const res = await h.api('POST', `/api/models/${NAME}/override`, {
      version: target.version,
      reason: 'e2e: the console must show this override',
    });
    expect(res.status).toBe(200);
    const { context, page, errors } = await openContext(browser, 'desktop');
    try {
      await page.goto(`${h.url}/models/${NAME}`);
      expect(await page.locator(`[data-override-notice="${target.version}"]`).innerText()).toContain(
        'override, review required',
      );
      expect(
        await page.locator(`tr[data-version="${target.version}"] [data-override=required]`).count(),
      ).toBe(1);
      expect(await page.locator('[data-field=production]').innerText()).toBe(`v${target.version}`);

      await page.goto(`${h.url}/runs?pipeline=${NAME}`);
      const row = page.locator('table.runs tr', {
        has: page.locator(`a[href="/runs/${NAME}/${target.runId}"]`),
      });
      expect(await row.locator('[data-override=required]').count()).toBe(1);

      await page.goto(`${h.url}/runs/${NAME}/${target.runId}`);
      expect(await page.locator(`[data-override-notice="${target.version}"]`).innerText()).toContain(
        'e2e: the console must show this override',
      );
      const serious = (await axeViolations(browser, page)).filter(
        (v) => v.impact === 'serious' || v.impact === 'critical',
      );
      expect(serious).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
