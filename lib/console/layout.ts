import type { SafeHtml } from '../approval/html';
import { markup } from '../approval/html';
import { assetUrl } from './assets';

/**
 * The console's page frame: every page is rendered server-side into this layout, works without
 * JavaScript, and runs under a strict CSP (no inline script or style: one stylesheet and one small
 * script, both served by the app at /console/assets/, see assets.ts).
 */

export type ConsoleSection = 'runs' | 'approvals' | 'models' | 'pipelines';

const NAV: readonly { key: ConsoleSection; label: string; href: string }[] = [
  { key: 'runs', label: 'Runs', href: '/runs' },
  { key: 'approvals', label: 'Approvals', href: '/approvals' },
  { key: 'models', label: 'Models', href: '/models' },
  { key: 'pipelines', label: 'Pipelines', href: '/pipelines' },
];

/** What the local console says of itself, on every page, when no one is signed in. */
export const LOCAL_BANNER = 'Local console: open to anyone on this machine, no sign-in.';

export interface PageInput {
  /** The page's own title (the tab reads `<title> · Sluice`). */
  title: string;
  /** The section the page belongs to (marked as current in the nav), or none. */
  nav?: ConsoleSection;
  body: SafeHtml;
  /** A banner above the page, e.g. {@link LOCAL_BANNER} (from `ConsoleAccess.banner`). */
  banner?: string;
  /** Who is signed in, shown in the header. */
  who?: string;
  /** The anti-forgery token, written into a meta tag (forms carry it in a hidden field: csrfField). */
  csrf?: string;
  /** HTTP status (default 200). */
  status?: number;
}

export interface ConsolePage {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The console's CSP: nothing but this origin's stylesheet, script and fetches; forms post only
 * here; never framed. SVG charts are inline elements whose geometry is attributes, not styles.
 */
export const CONSOLE_CSP =
  "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Response headers of every console HTML answer. */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': CONSOLE_CSP,
  'cache-control': 'no-store',
  'referrer-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'x-robots-tag': 'noindex, nofollow',
};

export function renderPage(input: PageInput): ConsolePage {
  const nav = NAV.map(
    (n) =>
      markup`<li><a href="${n.href}"${n.key === input.nav ? markup` aria-current="page"` : ''}>${n.label}</a></li>`,
  );
  const body = markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width,initial-scale=1" />
<meta name="robots" content="noindex,nofollow" />
${input.csrf ? markup`<meta name="csrf-token" content="${input.csrf}" />` : ''}
<title>${input.title} · Sluice</title>
<link rel="stylesheet" href="${assetUrl('console.css')}" />
<script src="${assetUrl('console.js')}" defer></script>
</head>
<body>
<a class="skip" href="#content">Skip to content</a>
${input.banner ? markup`<div class="banner" role="note">${input.banner}</div>` : ''}
<header class="top"><div class="in">
<a class="brand" href="/runs">Sluice</a>
<nav class="main" aria-label="Console"><ul>${nav}</ul></nav>
${input.who ? markup`<span class="who">Signed in as ${input.who}</span>` : ''}
</div></header>
<main id="content" tabindex="-1">
${input.body}
</main>
<footer>Sluice console · pages read and never change anything; only the buttons that say so do.</footer>
</body>
</html>`;
  return { status: input.status ?? 200, headers: { ...CONSOLE_HEADERS }, body: body.value };
}

/** A page that only explains something (not found, not allowed, bad filter). */
export function messagePage(
  status: number,
  title: string,
  text: string,
  frame: Omit<PageInput, 'title' | 'body' | 'status'> = {},
): ConsolePage {
  return renderPage({
    ...frame,
    title,
    status,
    body: markup`<div class="card"><h1>${title}</h1><p>${text}</p></div>`,
  });
}
