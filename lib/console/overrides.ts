import type { Container } from '@azure/cosmos';
import type { SafeHtml } from '../approval/html';
import { markup } from '../approval/html';
import type { OverrideMark } from '../registry/records';
import { overrideLabel, overrideMarkSchema } from '../registry/records';
import { when } from './format';

/**
 * Which runs' models went to production by emergency override (docs/governance.md): the registry
 * marks the version (`override`), and the version names the run that trained it. The Runs list and
 * the Run page show the mark on those runs, so "deployed without the quorum" is visible wherever the
 * run is. One query on the `models` container for a whole page of runs: only marked versions match,
 * and there are few.
 */

export interface RunOverride {
  modelName: string;
  version: number;
  override: OverrideMark;
}

/** The override marks of the versions the given runs registered, by run id. */
export async function overridesOfRuns(
  models: Pick<Container, 'items'>,
  runIds: readonly string[],
): Promise<Map<string, RunOverride>> {
  const out = new Map<string, RunOverride>();
  if (runIds.length === 0) return out;
  const { resources } = await models.items
    .query<{ modelName: string; version: number; runId: string; override: unknown }>({
      query:
        'SELECT c.modelName, c.version, c.runId, c.override FROM c WHERE c.kind = "version" AND IS_DEFINED(c.override) AND ARRAY_CONTAINS(@ids, c.runId)',
      parameters: [{ name: '@ids', value: [...new Set(runIds)] }],
    })
    .fetchAll();
  for (const r of resources) {
    const mark = overrideMarkSchema.safeParse(r.override);
    if (!mark.success) continue;
    const seen = out.get(r.runId);
    // A run registers one version; should two carry marks, the newer override wins.
    if (!seen || seen.override.at < mark.data.at)
      out.set(r.runId, { modelName: r.modelName, version: r.version, override: mark.data });
  }
  return out;
}

/** The mark as a chip: amber while the post-hoc review is pending, red when the review rejected it. */
export function overrideChip(mark: OverrideMark): SafeHtml {
  const cls = mark.review === 'required' ? 'pending' : mark.review === 'rejected' ? 'fail' : 'neutral';
  return markup`<span class="chip ${cls}" data-override="${mark.review}" title="deployed by emergency override on ${when(mark.at)} by ${mark.by}">${overrideLabel(mark)}</span>`;
}
