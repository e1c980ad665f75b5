import type { PipelineDefinition } from '../pipelines/definition';
import { modelNameOf } from '../pipelines/definition';
import type { MonitoringDeps } from './compute';
import { computeMonitoring } from './compute';
import type { ProposalDeps } from './proposals';
import { proposeRetrain } from './proposals';
import type { MonitoringDoc } from './records';
import type { MonitoringStore } from './store';

/**
 * The monitoring timer's work: for every pipeline with a `monitoring` section, the last complete
 * window (windows are aligned to multiples of `windowMinutes` since the epoch) is computed once,
 * a finding may lead to a proposal, and the model's monitoring document is replaced.
 */

export interface MonitorDeps extends MonitoringDeps {
  pipelines: { list(): Promise<{ name: string; definition: PipelineDefinition }[]> };
  store: Pick<MonitoringStore, 'labelsSince' | 'get' | 'put'>;
  /** Built on first use: the proposal side needs the approval keyring and notifier. */
  proposals(): Promise<ProposalDeps>;
  log?: (message: string) => void;
}

export function lastWindow(now: Date, windowMinutes: number): { from: Date; to: Date } {
  const ms = windowMinutes * 60_000;
  const to = Math.floor(now.getTime() / ms) * ms;
  return { from: new Date(to - ms), to: new Date(to) };
}

/** Computes one model's window, proposes on a finding, stores the document. */
export async function monitorPipeline(
  deps: MonitorDeps,
  pipeline: { name: string; definition: PipelineDefinition },
  window: { from: Date; to: Date },
  now: Date,
): Promise<MonitoringDoc> {
  const doc = await computeMonitoring(deps, pipeline, window, now);
  if (doc.finding.drifted) {
    const proposal = await proposeRetrain(await deps.proposals(), pipeline, doc, now);
    if (proposal) doc.finding.proposal = proposal;
  }
  await deps.store.put(doc);
  return doc;
}

export async function monitorAll(deps: MonitorDeps, now: Date): Promise<MonitoringDoc[]> {
  const done: MonitoringDoc[] = [];
  for (const p of await deps.pipelines.list()) {
    const spec = p.definition.monitoring;
    if (!spec) continue;
    const window = lastWindow(now, spec.windowMinutes);
    try {
      const current = await deps.store.get(modelNameOf(p.definition));
      if (current && current.window.to === window.to.toISOString()) continue;
      done.push(await monitorPipeline(deps, p, window, now));
    } catch (err) {
      deps.log?.(`monitoring of ${p.name}: ${(err as Error).message}`);
    }
  }
  return done;
}
