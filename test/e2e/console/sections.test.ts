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
import { fmt } from '../../../lib/console';
import type { PipelineHarness } from '../pipeline/harness';
import { startPipelineHarness, testPipeline, WAGES_CSV } from '../pipeline/harness';
import type { ViewportName } from '../../support/browser';
import { axeViolations, launchChromium, openContext, tabTo } from '../../support/browser';

jest.setTimeout(600_000);

type Json = Record<string, unknown>;
const NAME = 'console-e2e';

describe('console: approvals, models and pipelines in a browser', () => {
  let h: PipelineHarness;
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
    [h, browser] = await Promise.all([
      startPipelineHarness({ env: { TRAINING_HEARTBEAT_STALE_SECONDS: '120' } }),
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
});
