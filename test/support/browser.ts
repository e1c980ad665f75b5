/**
 * The console's browser harness: Debian's Chromium driven by playwright-core (no browser download),
 * pages opened at a desktop or a phone width with every console error and failed request
 * collected, keyboard focus read back, and axe-core's accessibility rules run in the page. The
 * console e2e tests, `npm run screenshots` and the approval page's test use the same Chromium.
 * CHROMIUM_PATH overrides where it is; AXE_CORE_PATH where axe.min.js is (default: the axe-core
 * package).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const VIEWPORTS = {
  desktop: { width: 1280, height: 900, isMobile: false },
  phone: { width: 390, height: 844, isMobile: true },
} as const;
export type ViewportName = keyof typeof VIEWPORTS;

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export interface OpenedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors, CSP refusals, uncaught exceptions and failed requests, as they happened. */
  errors: string[];
}

/** A new context at the viewport, with every error the page shows collected into `errors`. */
export async function openContext(
  browser: Browser,
  viewport: ViewportName,
  options: { javaScriptEnabled?: boolean; deviceScaleFactor?: number } = {},
): Promise<OpenedPage> {
  const v = VIEWPORTS[viewport];
  const context = await browser.newContext({
    viewport: { width: v.width, height: v.height },
    isMobile: v.isMobile,
    hasTouch: v.isMobile,
    javaScriptEnabled: options.javaScriptEnabled ?? true,
    deviceScaleFactor: options.deviceScaleFactor ?? 1,
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content Security Policy|Refused to/i.test(m.text())) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && r.request().resourceType() !== 'document')
      errors.push(`${r.status()} ${r.url()}`);
  });
  return { context, page, errors };
}

/** Where axe.min.js is; a clear error naming the fix when the package is missing. */
function axeSource(): string {
  const file =
    process.env.AXE_CORE_PATH ??
    (() => {
      try {
        return require.resolve('axe-core/axe.min.js');
      } catch {
        throw new Error(
          'axe-core is not installed: npm install --save-dev --save-exact axe-core (or set AXE_CORE_PATH)',
        );
      }
    })();
  return readFileSync(file, 'utf8');
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * axe-core's WCAG 2 A/AA rules on the page as it is now. The console's CSP allows no inline script,
 * so axe runs in a second page of a context that bypasses CSP, loaded with the same HTML and URL.
 */
export async function axeViolations(browser: Browser, page: Page): Promise<AxeViolation[]> {
  const html = await page.content();
  const url = page.url();
  const viewport = page.viewportSize() ?? { width: 1280, height: 900 };
  const context = await browser.newContext({ bypassCSP: true, viewport });
  try {
    const probe = await context.newPage();
    await probe.route(url, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: html }));
    await probe.goto(url);
    await probe.addScriptTag({ content: axeSource() });
    // A string, not a function: this file is compiled without the DOM types.
    return await probe.evaluate<AxeViolation[]>(`(async () => {
      const result = await window.axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice'] },
      });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => JSON.stringify(n.target)),
      }));
    })()`);
  } finally {
    await context.close();
  }
}

/** Presses Tab until `selector` has focus (at most `max` times); false when it never does. */
export async function tabTo(page: Page, selector: string, max = 80): Promise<boolean> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate<boolean>(
      `document.activeElement ? document.activeElement.matches(${JSON.stringify(selector)}) : false`,
    );
    if (focused) return true;
  }
  return false;
}
