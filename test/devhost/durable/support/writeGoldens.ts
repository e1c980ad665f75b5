/**
 * The writing half of golden capture: after a capture script has run its orchestrations to
 * completion on a real devhost, reads their raw histories from devhost's task hub (the exact
 * events the library was given) and writes each to test/fixtures/<folder>/<name>.json, the format
 * `loadGoldens` reads. Capture scripts run compiled, from dist/test/….
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { EventType } from '../../../../devhost/durable/history';
import { SqliteTaskHubStore } from '../../../../devhost/durable/sqliteStore';
import type { Golden } from './sdkDriver';

/** dist/test/devhost/durable/support → the repository root. */
const root = path.resolve(__dirname, '..', '..', '..', '..', '..');

export interface CapturedRun {
  /** The fixture file name, without `.json`. */
  name: string;
  orchestrator: string;
  instanceId: string;
}

export async function writeGoldens(opts: {
  /** The running devhost's data folder: its task hub is `<dataDir>/durable/<hub>.sqlite` (WAL: readable meanwhile). */
  dataDir: string;
  taskHub: string;
  /** Folder under test/fixtures. */
  folder: string;
  runs: CapturedRun[];
}): Promise<void> {
  const store = SqliteTaskHubStore.open(opts.dataDir, opts.taskHub);
  const loaded = await store.loadAll();
  store.close();
  for (const run of opts.runs) {
    const inst = loaded.find((l) => l.record.instanceId === run.instanceId);
    if (!inst) throw new Error(`${run.name} not found in the task hub`);
    const completed = inst.history.find((e) => e.EventType === EventType.ExecutionCompleted);
    const golden: Golden = {
      orchestrator: run.orchestrator,
      instanceId: run.instanceId,
      input: inst.record.input === null ? null : (JSON.parse(inst.record.input) as unknown),
      output: JSON.parse(completed?.Result ?? 'null') as unknown,
      history: inst.history,
    };
    const file = path.join(root, 'test', 'fixtures', opts.folder, `${run.name}.json`);
    writeFileSync(file, `${JSON.stringify(golden, null, 1)}\n`);
    console.log(`wrote ${file} (${inst.history.length} events)`);
  }
}
