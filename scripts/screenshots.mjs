#!/usr/bin/env node
// `npm run screenshots`: the README's pictures of the console, made again whenever the pages change.
//
// Starts devhost on a fresh data folder, runs the real demo against it (`npm run demo -- --approve`:
// the sample wages pipeline trained, evaluated, approved through the approval page and deployed,
// then a drifted run stopped by validation), and photographs the console's run page of the first
// run and the model page of `wages` in Debian's Chromium with the console tests' browser harness
// (dist/test/support/browser.js), at a desktop width:
//
//   docs/img/console-run.png      /runs/wages/<the demo's deployed run>
//   docs/img/console-models.png   /models/wages
//
// CHROMIUM_PATH overrides where Chromium is. The build runs first (package.json).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { startLocalSluice } = require(path.join(root, 'dist', 'cli', 'localSluice.js'));
const { launchChromium, openContext } = require(path.join(root, 'dist', 'test', 'support', 'browser.js'));

const shots = path.join(root, 'docs', 'img');

function runDemo(url) {
  return new Promise((resolve, reject) => {
    const demo = spawn(
      process.execPath,
      [path.join(root, 'dist', 'cli', 'demo.js'), '--url', url, '--approve'],
      {
        cwd: root,
        env: { ...process.env, NO_COLOR: '1' },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    demo.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the demo exited with ${code}`))));
  });
}

async function main() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-screenshots-'));
  // Training shares the machine with the browser: a heartbeat limit that survives a busy laptop.
  const sluice = await startLocalSluice({ dataDir, env: { TRAINING_HEARTBEAT_STALE_SECONDS: '120' } });
  let browser;
  try {
    await runDemo(sluice.url);
    const runs = await (await fetch(`${sluice.url}/api/runs?pipeline=wages`)).json();
    const deployed = runs.find((r) => r.status === 'succeeded');
    if (!deployed) throw new Error('the demo left no succeeded run of wages');
    browser = await launchChromium();
    mkdirSync(shots, { recursive: true });
    for (const [file, route] of [
      ['console-run.png', `/runs/wages/${encodeURIComponent(deployed.id)}`],
      ['console-models.png', '/models/wages'],
    ]) {
      const { context, page, errors } = await openContext(browser, 'desktop');
      const res = await page.goto(`${sluice.url}${route}`);
      if (res?.status() !== 200) throw new Error(`${route} answered ${res?.status()}`);
      await page.screenshot({ path: path.join(shots, file), fullPage: true });
      await context.close();
      if (errors.length) throw new Error(`${route}: ${errors.join('; ')}`);
      console.log(`screenshots: ${path.relative(root, path.join(shots, file))} (${route})`);
    }
  } finally {
    await browser?.close();
    await sluice.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
