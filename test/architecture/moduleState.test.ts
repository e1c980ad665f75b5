import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findModuleState } from './moduleState';

/**
 * No module-level singletons in lib/ (issue 14): every store, client and backend is built by
 * `createServices` (lib/services.ts) and held once per process by app/services.ts. What lib/ may
 * still keep at module level is listed here with the reason; anything else fails this test.
 */

const root = path.resolve(__dirname, '../..');

const allowed: Record<string, string> = {
  // The validating thread and its helper belong to the process (worker threads), not to a
  // configuration: they hold no settings, client or store, and every caller shares them.
  'lib/data/checking/offThread.ts:jobs': 'jobs in flight on the process-wide validation threads',
  'lib/data/checking/offThread.ts:nextId': 'ids of those jobs',
  'lib/data/checking/offThread.ts:validating': 'the validation thread',
  'lib/data/checking/offThread.ts:helping': 'the helper thread',
  // A parse buffer reused by the hot loops; no caller sees it.
  'lib/data/table.ts:scratch': 'a reusable parse buffer',
  // Two views of one 8-byte word, to read a float's bits while hashing; no caller sees them.
  'lib/training/split.ts:f64': 'a float-to-bits scratch word',
  'lib/training/split.ts:u32': 'the same word as two 32-bit halves',
};

describe('module-level state in lib/', () => {
  it('is only what the allowlist names: no singleton stores, clients, caches or memos', () => {
    const state = findModuleState(root, 'lib');
    const found = state.map((s) => `${s.file}:${s.name}`);
    const unexpected = state
      .filter((s) => !(`${s.file}:${s.name}` in allowed))
      .map((s) => `${s.file}:${s.line} ${s.name}: ${s.why}`);
    expect(unexpected).toEqual([]);
    // The allowlist names nothing that is gone.
    expect(Object.keys(allowed).filter((k) => !found.includes(k))).toEqual([]);
  });

  it('finds the singletons issue 14 removed: a lazily built deps memo, a client cache, a store built at load', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'module-state-'));
    try {
      mkdirSync(path.join(dir, 'lib', 'runs'), { recursive: true });
      writeFileSync(
        path.join(dir, 'lib', 'runs', 'deps.ts'),
        [
          'let deps: Promise<unknown> | undefined;',
          'export const getDeps = () => (deps ??= Promise.resolve({}));',
          'const clients = new Map<string, object>();',
          'export const client = (k: string) => clients.get(k) ?? (clients.set(k, {}), clients.get(k));',
          'class RunStore {}',
          'export const runs = new RunStore();',
          "const WORDS = new Set(['yes', 'no']);",
          'export const isWord = (w: string) => WORDS.has(w);',
          'const decoder = new TextDecoder();',
          'export const text = (b: Uint8Array) => decoder.decode(b);',
        ].join('\n'),
      );
      expect(findModuleState(dir, 'lib').map((s) => `${s.name}: ${s.why}`)).toEqual([
        'deps: a module-level let/var',
        'clients: a Map the module writes to',
        'runs: a RunStore built when the module loads',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
