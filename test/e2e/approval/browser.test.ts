/**
 * The approval page in a real browser: Debian's chromium driven by playwright-core (no browser
 * download). A reviewer reads the evidence and clicks Approve with JavaScript disabled, on a phone-
 * sized screen; the gate moves on. A scanner-like visit with JavaScript on changes nothing.
 * `.ci/run` installs chromium with apt; CHROMIUM_PATH overrides where it is.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';
import type { GateHarness } from './harness';
import { startGateHarness } from './harness';

jest.setTimeout(180_000);

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('approval page in headless Chromium', () => {
  let h: GateHarness;
  let browser: Browser;

  beforeAll(async () => {
    if (!existsSync(executablePath)) {
      throw new Error(
        `Chromium not found at ${executablePath}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
      );
    }
    [h, browser] = await Promise.all([
      startGateHarness(),
      chromium.launch({
        executablePath,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([browser?.close(), h?.stop()]);
  });

  it('shows the evidence, and a click on Approve (no JavaScript, phone screen) moves the gate on', async () => {
    const input = h.newInput({
      policy: { reviewers: ['alice@example.com', 'bob@example.com'], requiredApprovals: 1, timeout: '10m' },
    });
    const id = await h.startGate(input);
    const link = await h.linkFor(input.runId, 'alice@example.com');

    // A mail scanner that runs a full browser (JS on) opens the link first: nothing may change.
    const scanner = await browser.newContext();
    const scan = await scanner.newPage();
    expect((await scan.goto(link))?.status()).toBe(200);
    await scanner.close();
    expect((await h.status(id)).customStatus?.waitingFor).toEqual(['alice@example.com', 'bob@example.com']);

    const context = await browser.newContext({
      javaScriptEnabled: false,
      viewport: { width: 390, height: 844 },
      isMobile: true,
    });
    const page = await context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    const res = await page.goto(link);
    expect(res?.status()).toBe(200);
    const text = await page.locator('main').innerText();
    for (const expected of [
      'Candidate vs production',
      'roc_auc',
      '0.8712',
      'Per slice',
      'APAC',
      'Data: validation and drift',
      'support_calls_90d',
      input.candidate.modelDigest,
      'Run timeline',
    ]) {
      expect(text).toContain(expected);
    }
    // The stylesheet is allowed by its CSP hash: the Approve button is green, and nothing was refused.
    expect(
      await page.evaluate<string>(
        "getComputedStyle(document.querySelector('button.approve')).backgroundColor",
      ),
    ).toBe('rgb(26, 127, 55)');
    expect(violations).toEqual([]);
    // Readable on a phone: the page itself does not scroll sideways (wide tables scroll in their box).
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);

    await page.fill('#comment', 'Evidence checked on my phone.');
    await Promise.all([page.waitForNavigation(), page.click('button.approve')]);
    expect(await page.locator('.notice').innerText()).toContain('Your approval is recorded.');
    await page.screenshot({
      path: `${process.env.TMPDIR ?? '/tmp'}/sluice-approval-after-click.png`,
      fullPage: true,
    });
    await context.close();

    const done = await h.finished(id);
    expect(done.output).toMatchObject({ outcome: 'approved', approvedBy: ['alice@example.com'] });
  });
});
