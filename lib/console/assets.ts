import { createHash } from 'node:crypto';
import { APPROVAL_CSS } from '../approval/page';

/**
 * The console's two static assets, served by the app itself (functions/console.ts,
 * `/console/assets/{file}`): one stylesheet (the approval page's, plus the console's own rules) and
 * one small progressive-enhancement script. Pages link them as `?v=<hash>`, so a browser may cache
 * them forever, and the CSP allows `'self'` only: no inline script or style anywhere.
 */

const CONSOLE_CSS = `
main{max-width:1120px}
header.top .in{max-width:1120px}
.skip{position:absolute;left:-9999px;top:0;background:var(--card);padding:8px 12px;border:2px solid var(--accent);border-radius:6px;z-index:9}
.skip:focus{left:8px;top:8px}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible,summary:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
nav.main ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:4px}
nav.main a{display:inline-block;padding:6px 12px;border-radius:8px;text-decoration:none;color:var(--ink);font-weight:600}
nav.main a[aria-current=page]{background:var(--accent-bg);color:var(--accent)}
nav.main a:hover{background:#eef0f3}
.who{color:var(--muted);font-size:.85rem}
.banner{background:var(--warn-bg);color:#5c3d00;border-bottom:1px solid #f1d48a;padding:8px 16px;text-align:center;font-size:.9rem}
.chip.running,.chip.queued{background:var(--accent-bg);color:var(--accent);border-color:#bccdf5}
.chip.waiting_for_approval{background:var(--warn-bg);color:var(--warn);border-color:#f1d48a}
.chip.succeeded{background:var(--good-bg);color:var(--good);border-color:#a8dcb8}
.chip.failed{background:var(--bad-bg);color:var(--bad);border-color:#f3b4b7}
.chip.stopped,.chip.canceled,.chip.skipped,.chip.pending{background:#eef0f3;color:var(--muted);border-color:var(--line)}
form.filters{display:flex;flex-wrap:wrap;gap:10px 14px;align-items:flex-end}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted);font-weight:600;gap:3px}
form.filters input,form.filters select{font:inherit;font-size:.92rem;border:1px solid #b9c0c9;border-radius:6px;padding:6px 8px;background:#fff;color:var(--ink);min-width:9em}
form.filters button,a.button,form.inline button{min-width:0;padding:7px 16px;background:var(--accent);color:#fff;text-decoration:none;display:inline-block;border-radius:8px;font-weight:650}
a.button.quiet{background:#fff;color:var(--accent);border:1px solid var(--accent)}
button.danger{background:#fff;color:var(--bad);border:1px solid var(--bad)}
form.inline{display:inline}
.pager{display:flex;gap:10px;justify-content:space-between;align-items:center;margin-top:12px;flex-wrap:wrap}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
svg.chart{display:block;width:100%;height:auto;max-width:100%}
svg.chart text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#3c4552}
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:.82rem;color:var(--muted);margin:6px 0 0;padding:0;list-style:none}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;vertical-align:-1px}
.legend i.compute{background:#2352c7}.legend i.queued{background:#9aa4b1}.legend i.people{background:#d29a00}.legend i.failed{background:#c4262e}
pre.log{background:#0f1419;color:#e6e6e6;border-radius:8px;padding:10px 12px;overflow:auto;max-height:360px;font-size:.8rem;line-height:1.4;white-space:pre-wrap;overflow-wrap:anywhere}
details>summary{cursor:pointer;font-weight:600}
.live[data-state=stale]{opacity:.6}
td .sub,li .sub{font-size:.82rem}
h2 .chip{vertical-align:2px;margin-left:6px}
@media (max-width:560px){nav.main a{padding:6px 8px}form.filters label{flex:1 1 40%}form.filters input,form.filters select{min-width:0;width:100%}table.runs .opt{display:none}}
`;

/**
 * The console's script: live status without a reload. An element with `data-poll` (a same-origin
 * /api URL) is refreshed every few seconds while it shows an active run: on the Runs page each row's
 * status cell is updated from /api/runs; on a Run page a changed status reloads the page (when no
 * form field has focus). Without JavaScript the pages are the same, with a refresh link.
 */
const CONSOLE_JS = `'use strict';
(function () {
  var ACTIVE = { queued: 1, running: 1, waiting_for_approval: 1 };
  var LABEL = { waiting_for_approval: 'waiting for approval' };
  function label(s) { return LABEL[s] || s; }
  function setChip(el, status) {
    el.className = 'chip ' + status;
    el.textContent = label(status);
    el.setAttribute('data-status', status);
  }
  function every(root, ms, tick) {
    var timer = 0;
    function run() {
      tick().then(function (more) {
        root.removeAttribute('data-state');
        if (more) timer = setTimeout(run, ms);
      }, function () {
        root.setAttribute('data-state', 'stale');
        timer = setTimeout(run, ms * 3);
      });
    }
    timer = setTimeout(run, ms);
    return function () { clearTimeout(timer); };
  }
  function getJson(url) {
    return fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    });
  }
  var list = document.querySelector('[data-poll-list]');
  if (list) {
    every(list, 4000, function () {
      var chips = list.querySelectorAll('[data-run-status]');
      var active = Array.prototype.some.call(chips, function (c) { return ACTIVE[c.getAttribute('data-status')]; });
      if (!active) return Promise.resolve(false);
      return getJson(list.getAttribute('data-poll-list')).then(function (runs) {
        var byId = {};
        runs.forEach(function (r) { byId[r.id] = r; });
        Array.prototype.forEach.call(chips, function (c) {
          var r = byId[c.getAttribute('data-run-status')];
          if (r && r.status !== c.getAttribute('data-status')) setChip(c, r.status);
        });
        return true;
      });
    });
  }
  var one = document.querySelector('[data-poll-run]');
  if (one && ACTIVE[one.getAttribute('data-status')]) {
    every(one, 3000, function () {
      return getJson(one.getAttribute('data-poll-run')).then(function (run) {
        if (run.status === one.getAttribute('data-status')) return true;
        var f = document.activeElement;
        if (f && (f.tagName === 'TEXTAREA' || f.tagName === 'INPUT')) return true;
        location.reload();
        return false;
      });
    });
  }
})();
`;

export interface ConsoleAsset {
  name: string;
  contentType: string;
  body: string;
  /** The first 16 hex digits of the body's SHA-256: the `v` of the asset's URL. */
  version: string;
}

function asset(name: string, contentType: string, body: string): ConsoleAsset {
  return {
    name,
    contentType,
    body,
    version: createHash('sha256').update(body).digest('hex').slice(0, 16),
  };
}

const ASSETS: readonly ConsoleAsset[] = Object.freeze([
  asset('console.css', 'text/css; charset=utf-8', APPROVAL_CSS + CONSOLE_CSS),
  asset('console.js', 'text/javascript; charset=utf-8', CONSOLE_JS),
]);

/** The asset of this file name, or undefined. */
export function consoleAsset(name: string): ConsoleAsset | undefined {
  return ASSETS.find((a) => a.name === name);
}

/** The URL pages link an asset by (versioned by content, so it can be cached forever). */
export function assetUrl(name: 'console.css' | 'console.js'): string {
  const a = consoleAsset(name);
  if (!a) throw new Error(`no console asset ${name}`);
  return `/console/assets/${a.name}?v=${a.version}`;
}
