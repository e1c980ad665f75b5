/**
 * Accessibility checks run inside the page. axe-core is not in node_modules (the lead may add it;
 * then this file should hand over to it), so these are the rules the console's pages could break,
 * checked directly, each reported like axe's "serious"/"critical" findings: a document language and
 * title, one h1, names for every link, button, form control and chart, table headers, unique ids,
 * ARIA references that resolve, and nothing focusable hidden from assistive technology.
 */
import type { Page } from 'playwright-core';

export async function a11yViolations(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`(() => {
    const out = [];
    const doc = document;
    const text = (el) => (el?.textContent ?? '').replace(/\\s+/g, ' ').trim();
    const describe = (el) =>
      \`\${el.tagName.toLowerCase()}\${el.id ? \`#\${el.id}\` : ''}\${el.className && typeof el.className === 'string' ? \`.\${el.className.split(' ').join('.')}\` : ''}\`;
    const labelled = (el): string => {
      const by = el.getAttribute('aria-labelledby');
      if (by) return by.split(/\\s+/).map((id) => text(doc.getElementById(id))).join(' ').trim();
      const aria = el.getAttribute('aria-label');
      if (aria) return aria.trim();
      if (el.id) {
        const label = doc.querySelector(\`label[for="\${CSS.escape(el.id)}"]\`);
        if (label) return text(label);
      }
      const wrap = el.closest('label');
      if (wrap) return text(wrap);
      return el.getAttribute('title') ?? '';
    };
    if (!doc.documentElement.lang) out.push('html-has-lang: the page has no lang');
    if (!text(doc.querySelector('title'))) out.push('document-title: the page has no title');
    if (doc.querySelectorAll('h1').length !== 1) out.push(\`page-has-heading-one: \${doc.querySelectorAll('h1').length} h1 elements\`);
    if (!doc.querySelector('main')) out.push('landmark-one-main: no main landmark');
    for (const a of Array.from(doc.querySelectorAll('a[href]'))) {
      if (!text(a) && !labelled(a)) out.push(\`link-name: \${describe(a)} has no text\`);
    }
    for (const b of Array.from(doc.querySelectorAll('button'))) {
      if (!text(b) && !labelled(b)) out.push(\`button-name: \${describe(b)} has no name\`);
    }
    for (const f of Array.from(doc.querySelectorAll('input:not([type=hidden]), select, textarea'))) {
      if (!labelled(f)) out.push(\`label: \${describe(f)} (\${f.getAttribute('name')}) has no label\`);
    }
    for (const svg of Array.from(doc.querySelectorAll('svg'))) {
      if (svg.getAttribute('aria-hidden') === 'true') continue;
      if (svg.getAttribute('role') !== 'img' || !labelled(svg)) out.push(\`svg-img-alt: \${describe(svg)} has no text alternative\`);
    }
    for (const el of Array.from(doc.querySelectorAll('[aria-labelledby], [aria-describedby]'))) {
      for (const attr of ['aria-labelledby', 'aria-describedby']) {
        for (const id of (el.getAttribute(attr) ?? '').split(/\\s+/).filter(Boolean)) {
          if (!doc.getElementById(id)) out.push(\`aria-valid-attr-value: \${describe(el)} \${attr} names missing #\${id}\`);
        }
      }
    }
    const ids = new Map();
    for (const el of Array.from(doc.querySelectorAll('[id]'))) ids.set(el.id, (ids.get(el.id) ?? 0) + 1);
    for (const [id, n] of ids) if (n > 1) out.push(\`duplicate-id-aria: #\${id} appears \${n} times\`);
    for (const table of Array.from(doc.querySelectorAll('table'))) {
      if (!table.querySelector('th')) out.push(\`td-has-header: \${describe(table)} has no header cells\`);
    }
    for (const el of Array.from(doc.querySelectorAll('[aria-hidden=true] a, [aria-hidden=true] button, [aria-hidden=true] input'))) {
      out.push(\`aria-hidden-focus: \${describe(el)} is focusable inside aria-hidden\`);
    }
    // Text contrast of the banner, chips, muted text and buttons: WCAG AA 4.5:1 for normal text.
    const rgb = (s) => {
      const m = s.match(/rgba?\\(([^)]+)\\)/);
      if (!m) return [0, 0, 0, 1];
      const p = m[1].split(',').map((x) => parseFloat(x));
      return [p[0], p[1], p[2], p[3] ?? 1];
    };
    const lum = ([r, g, b]) => {
      const f = (c) => {
        const s = c / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el): [number, number, number, number] => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c[3] > 0.5) return c;
      }
      return [255, 255, 255, 1];
    };
    const seen = new Set();
    for (const el of Array.from(doc.querySelectorAll('body *'))) {
      if (el.closest('svg')) continue;
      const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || el.offsetParent === null) continue;
      const cs = getComputedStyle(el);
      const fg = rgb(cs.color);
      const bg = background(el);
      const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const large = parseFloat(cs.fontSize) >= 24 || (parseFloat(cs.fontSize) >= 18.66 && Number(cs.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        const key = \`\${describe(el)} \${cs.color} on \${bg.join(',')}\`;
        if (!seen.has(key)) out.push(\`color-contrast: \${key} is \${ratio.toFixed(2)}:1 ("\${text(el).slice(0, 30)}")\`);
        seen.add(key);
      }
    }
    return out;
  })()`);
}
