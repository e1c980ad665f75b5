/**
 * The console in a real browser (Debian's chromium driven by playwright-core, as the approval page's
 * test): after real pipeline runs on devhost, the Runs and Run pages at desktop and phone widths
 * show the API's numbers, log no console errors, can be walked with the keyboard and pass the
 * axe-core's accessibility rules (no serious or critical violation); Cancel is clicked for real on a slow run and checked through
 * the API. Needs `dist/` (npm run build). CHROMIUM_PATH overrides where chromium is.
 */
import { existsSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import type { EvaluationReport } from '../../../lib/evaluation/report';
import type { ValidationReport } from '../../../lib/data/checking/report';
import { duration, fmt } from '../../../lib/console/format';
import type { PipelineHarness, RunView } from '../pipeline/harness';
import { WAGE_FEATURES, slowTraining, startPipelineHarness, testPipeline } from '../pipeline/harness';
import { axeViolations } from '../../support/browser';

jest.setTimeout(400_000);

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENS = {
  desktop: { viewport: { width: 1280, height: 900 } },
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
} as const;

type Timing = { totalMs: number; computeMs: number; peopleMs: number; queuedMs: number };

describe('the console in headless Chromium', () => {
  let h: PipelineHarness;
  let browser: Browser;
  let first: RunView & { timing: Timing };
  let second: RunView & { timing: Timing };

  /** A page that records console errors, page errors and CSP refusals. */
  async function open(
    context: BrowserContext,
    path: string,
  ): Promise<{ page: Page; errors: string[]; status: number }> {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || /Content Security Policy|Refused to/i.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    const res = await page.goto(`${h.url}${path}`);
    return { page, errors, status: res?.status() ?? 0 };
  }

  beforeAll(async () => {
    if (!existsSync(executablePath)) {
      throw new Error(
        `Chromium not found at ${executablePath}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
      );
    }
    [h, browser] = await Promise.all([
      startPipelineHarness(),
      chromium.launch({
        executablePath,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      }),
    ]);
    // Two real runs of one pipeline: the first deploys a champion, the second is compared with it
    // (drift against the first's data, candidate vs champion).
    // Boosting reports a loss per round, so the Run page has a training curve to draw.
    await h.put(
      testPipeline('e2e-console', {
        training: {
          algorithm: 'gradient_boosting',
          target: 'wage',
          features: WAGE_FEATURES,
          hyperparameters: { rounds: 40, learningRate: 0.1, maxDepth: 3 },
          split: { train: 0.7, validation: 0.1, holdout: 0.2 },
          timeLimitSeconds: 300,
        },
      }),
    );
    const a = await h.start('e2e-console');
    await h.waitFor(a, 'approval', (r) => r.status === 'waiting_for_approval');
    await h.decide(a, 'approve', 'first model');
    first = (await h.finished(a)) as typeof first;
    const b = await h.start('e2e-console');
    await h.waitFor(b, 'approval', (r) => r.status === 'waiting_for_approval');
    await h.decide(b, 'approve', 'second model, checked against the first');
    second = (await h.finished(b)) as typeof second;
  });
  afterAll(async () => {
    await Promise.all([browser?.close(), h?.stop()]);
  });

  it('the root redirects to Runs; assets are served with the CSP the pages declare', async () => {
    const root = await fetch(`${h.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/runs');
    const runs = await fetch(`${h.url}/runs`);
    expect(runs.status).toBe(200);
    expect(runs.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await runs.text();
    const css = /href="(\/console\/assets\/console\.css\?v=[0-9a-f]+)"/.exec(html)![1]!;
    const asset = await fetch(`${h.url}${css}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    // Page weight: the HTML and its two assets (the budget of issue 18 is 100 KB a page).
    const js = /src="(\/console\/assets\/console\.js\?v=[0-9a-f]+)"/.exec(html)![1]!;
    const weight =
      html.length + (await asset.text()).length + (await (await fetch(`${h.url}${js}`)).text()).length;
    expect(weight).toBeLessThan(100_000);
  });

  it('reports API: JSON, HTML for a browser, 400 naming an unknown kind, 404 for an unknown run', async () => {
    const json = await h.api('GET', `/api/runs/${second.id}/reports/evaluation`, undefined, {
      accept: 'application/json',
    });
    expect(json.status).toBe(200);
    const report = (await json.json()) as EvaluationReport;
    expect(report.champion?.version).toBe(1);
    const html = await h.api('GET', `/api/runs/${second.id}/reports/validation`, undefined, {
      accept: 'text/html',
    });
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(await html.text()).toContain('Validation report');
    const bad = await h.api('GET', `/api/runs/${second.id}/reports/training`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'unknown_report_kind', field: 'kind' });
    expect((await h.api('GET', `/api/runs/no-such-run/reports/validation`)).status).toBe(404);
    // The run document links there, never to storage.
    const run = (await h.run(second.id)) as RunView & { links: { reports: Record<string, string> } };
    expect(run.links.reports).toEqual({
      validation: `/api/runs/${second.id}/reports/validation`,
      evaluation: `/api/runs/${second.id}/reports/evaluation`,
    });
  });

  for (const [screen, options] of Object.entries(SCREENS)) {
    it(`Runs page (${screen}): the API's runs and statuses, keyboard, accessibility, no errors`, async () => {
      const context = await browser.newContext(options);
      const { page, errors, status } = await open(context, '/runs?pipeline=e2e-console');
      expect(status).toBe(200);
      const api = (await (await h.api('GET', '/api/runs?pipeline=e2e-console')).json()) as {
        id: string;
        status: string;
      }[];
      expect(api.map((r) => r.id)).toEqual([second.id, first.id]);
      for (const r of api) {
        expect(await page.locator(`[data-run-status="${r.id}"]`).getAttribute('data-status')).toBe(r.status);
      }
      expect(await page.locator('.banner').innerText()).toContain('open to anyone on this machine');
      // Keyboard: the first Tab is the skip link, then the brand and the nav.
      await page.keyboard.press('Tab');
      expect(
        await page.evaluate<string | null>('document.activeElement && document.activeElement.textContent'),
      ).toBe('Skip to content');
      const reached: string[] = [];
      for (let i = 0; i < 6; i++) {
        await page.keyboard.press('Tab');
        reached.push(
          (await page.evaluate<string | null>(
            'document.activeElement && document.activeElement.textContent',
          )) ?? '',
        );
      }
      expect(reached).toEqual(expect.arrayContaining(['Runs', 'Approvals', 'Models', 'Pipelines']));
      expect(
        (await axeViolations(browser, page)).filter((v) => v.impact === 'serious' || v.impact === 'critical'),
      ).toEqual([]);
      if (screen === 'phone') {
        expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      }
      // A filter from the form narrows the list (no JavaScript needed: a GET form).
      await page.selectOption('select[name=status]', 'canceled');
      await Promise.all([page.waitForNavigation(), page.click('form.filters button[type=submit]')]);
      expect(page.url()).toContain('status=canceled');
      expect(await page.locator('main').innerText()).toContain('No run matches these filters.');
      expect(errors).toEqual([]);
      await context.close();
    });

    it(`Run page (${screen}): timeline, reports and approval equal the API's`, async () => {
      const context = await browser.newContext(options);
      // The id-only URL (the API's links.console) redirects to the page that names the pipeline.
      const { page, errors, status } = await open(context, `/runs/${second.id}`);
      expect(status).toBe(200);
      expect(page.url()).toBe(`${h.url}/runs/${second.pipeline}/${second.id}`);
      const t = second.timing;
      expect(await page.locator('[data-timing=total]').innerText()).toBe(duration(t.totalMs));
      expect(await page.locator('[data-timing=compute]').innerText()).toBe(duration(t.computeMs));
      expect(await page.locator('[data-timing=people]').innerText()).toBe(duration(t.peopleMs));
      expect(await page.locator('[data-timing=queued]').innerText()).toBe(duration(t.queuedMs));
      const text = await page.locator('main').innerText();
      // Evaluation: every metric of the report, candidate and champion, as the report has them.
      const evaluation = (await (
        await h.api('GET', `/api/runs/${second.id}/reports/evaluation`, undefined, {
          accept: 'application/json',
        })
      ).json()) as EvaluationReport;
      for (const [metric, value] of Object.entries(evaluation.candidate.metrics)) {
        const row = await page.locator(`tr[data-metric="${metric}"]`).innerText();
        expect(row).toContain(fmt(value));
        expect(row).toContain(fmt(evaluation.champion!.metrics[metric]));
      }
      // Validation: rows, and a drift histogram per compared feature.
      const validation = (await (
        await h.api('GET', `/api/runs/${second.id}/reports/validation`, undefined, {
          accept: 'application/json',
        })
      ).json()) as ValidationReport;
      expect(text).toContain(String(validation.dataset.rows));
      const compared =
        validation.drift.status === 'skipped' ? [] : validation.drift.columns.filter((c) => c.histogram);
      expect(compared.length).toBeGreaterThan(0);
      for (const c of compared) {
        expect(await page.locator(`svg title:text-is("${c.column}: reference vs current")`).count()).toBe(1);
      }
      // Training: loss curve and log tail; approval with who decided.
      expect(await page.locator('svg title:text-is("Loss curve")').count()).toBe(1);
      expect(await page.locator('pre.log').innerText()).toContain('model stored');
      expect(text).toContain('reviewer@example.com approved');
      expect(text).toContain('second model, checked against the first');
      // Deployment: the deployed version's evidence pack and MLflow zip, through the API.
      const deployed = second.deployment as { modelName: string; version: number };
      const evidence = page.locator(`a[data-evidence="${deployed.modelName}:${deployed.version}"]`);
      expect(await evidence.getAttribute('href')).toBe(
        `/api/models/${encodeURIComponent(deployed.modelName)}/versions/${deployed.version}/evidence`,
      );
      expect((await fetch(`${h.url}${await evidence.getAttribute('href')}`)).status).toBe(200);
      expect(
        (await axeViolations(browser, page)).filter((v) => v.impact === 'serious' || v.impact === 'critical'),
      ).toEqual([]);
      if (screen === 'phone') {
        expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      }
      // The report link opens the HTML report through the API.
      await Promise.all([page.waitForNavigation(), page.click('#s-evaluation a')]);
      expect(page.url()).toBe(`${h.url}/api/runs/${second.id}/reports/evaluation`);
      expect(await page.locator('h1').innerText()).toBe('Evaluation report');
      expect(errors).toEqual([]);
      await context.close();
    });
  }

  it('Cancel, clicked by an operator on a slow run, cancels it (checked through the API); a forged POST does not', async () => {
    await h.put(testPipeline('e2e-console-slow', { training: slowTraining(600) }));
    const id = await h.start('e2e-console-slow');
    await h.waitFor(id, 'training', (r) => {
      const train = r.steps.find((s) => s.name === 'train');
      return train?.status === 'running' && typeof train.outputs?.jobId === 'string';
    });
    // A POST from another site (no token, foreign Origin) changes nothing.
    const forged = await fetch(`${h.url}/runs/${id}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' },
      body: 'csrf=x',
    });
    expect(forged.status).toBe(403);
    expect((await h.run(id)).status).toBe('running');

    const context = await browser.newContext(SCREENS.desktop);
    const { page, errors } = await open(context, `/runs/${id}`);
    // Keyboard: Tab reaches the Cancel button.
    let onCancel = false;
    for (let i = 0; i < 12 && !onCancel; i++) {
      await page.keyboard.press('Tab');
      onCancel = await page.evaluate<boolean>(
        "!!document.activeElement && document.activeElement.id === 'cancel-run'",
      );
    }
    expect(onCancel).toBe(true);
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(page.url()).toBe(`${h.url}/runs/e2e-console-slow/${id}?done=cancel`);
    expect(await page.locator('.notice').innerText()).toContain('Canceled');
    const run = await h.run(id);
    expect(run).toMatchObject({ status: 'canceled', stopReason: 'canceled', reason: 'canceled by local' });
    expect(run.steps.find((s) => s.name === 'train')?.status).toBe('canceled');
    expect((await h.durable(id)).runtimeStatus).toBe('Terminated');
    expect(await page.locator('#cancel-run').count()).toBe(0);
    expect(errors).toEqual([]);
    await context.close();
  });
});
