import type { CosmosStore } from '../storage/cosmos';
import { TransientError } from '../errors';
import type { RolloutControl, RolloutControlRecord } from '../contracts/rollout';
import type { RolloutDoc } from './records';
import { LIVE_STATES, ROLLOUT_DOC_ID, rolloutDocSchema } from './records';

const MAX_ATTEMPTS = 8;

/**
 * The rollout documents (records.ts; parsing drops Cosmos's system properties). Writers change a document with a function of its current
 * value, ETag-conditioned, so the orchestration's activities and a retried activity converge.
 */
export class RolloutStore {
  constructor(private readonly cosmos: Pick<CosmosStore, 'read' | 'create' | 'replace' | 'container'>) {}

  /** Every live rollout (active or paused), across models: for reconciliation, a few at most. */
  async listLive(): Promise<RolloutDoc[]> {
    const { resources } = await this.cosmos
      .container('models')
      .items.query<RolloutDoc>({
        query:
          'SELECT * FROM c WHERE c.id = @id AND c.kind = "rollout" AND (c.state = "active" OR c.state = "paused")',
        parameters: [{ name: '@id', value: ROLLOUT_DOC_ID }],
      })
      .fetchAll();
    return resources.flatMap((d) => {
      const parsed = rolloutDocSchema.safeParse(d);
      return parsed.success ? [parsed.data] : [];
    });
  }

  async get(modelName: string): Promise<RolloutDoc | undefined> {
    const doc = await this.cosmos.read<RolloutDoc>('models', ROLLOUT_DOC_ID, modelName);
    if (!doc) return undefined;
    const parsed = rolloutDocSchema.safeParse(doc);
    return parsed.success ? parsed.data : undefined;
  }

  /**
   * Applies `change` to the model's rollout document (undefined: there is none) and writes the
   * result; `change` returning undefined writes nothing. Returns what is stored afterwards.
   */
  async update(
    modelName: string,
    change: (current: RolloutDoc | undefined) => RolloutDoc | undefined,
  ): Promise<RolloutDoc | undefined> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const raw = await this.cosmos.read<RolloutDoc>('models', ROLLOUT_DOC_ID, modelName);
      const parsed = raw ? rolloutDocSchema.safeParse(raw) : undefined;
      const current = parsed?.success ? parsed.data : undefined;
      const next = change(current);
      if (next === undefined) return current;
      const doc = rolloutDocSchema.parse(next);
      const outcome = raw
        ? await this.cosmos.replace('models', doc, raw._etag)
        : await this.cosmos.create('models', doc);
      if (outcome.ok) return doc;
    }
    throw new TransientError('rollout_busy', `rollout of ${modelName}: too many concurrent changes`);
  }
}

/**
 * Stores an operator request on the model's live rollout (numbered after the last one) and returns
 * it with the rollout's id, or undefined when the model has no live rollout. An abort is sticky:
 * once stored, a later pause, resume or promote is refused (AbortPendingError, `abort_pending`), so
 * no request can overwrite it before the orchestration's next check reads it; another abort
 * returns the stored one unchanged.
 */
export async function requestControl(
  store: Pick<RolloutStore, 'update'>,
  modelName: string,
  control: RolloutControl,
  at: string,
  /** Only this rollout (a run's own): another live rollout of the model is left alone. */
  onlyRolloutId?: string,
): Promise<{ rolloutId: string; runId: string; control: RolloutControlRecord } | undefined> {
  let stored: RolloutControlRecord | undefined;
  const doc = await store.update(modelName, (current) => {
    stored = undefined;
    if (!current || !LIVE_STATES.has(current.state)) return undefined;
    if (onlyRolloutId !== undefined && current.rolloutId !== onlyRolloutId) return undefined;
    if (current.control?.action === 'abort') {
      if (control.action !== 'abort') throw new AbortPendingError(current.rolloutId, current.control);
      stored = current.control;
      return undefined;
    }
    stored = { ...control, seq: (current.control?.seq ?? 0) + 1, at };
    return { ...current, control: stored, updatedAt: at };
  });
  return doc && stored ? { rolloutId: doc.rolloutId, runId: doc.runId, control: stored } : undefined;
}

/** Requests after an abort that are refused: an abort is final (docs/rollout.md). */
export class AbortPendingError extends Error {
  readonly code = 'abort_pending';
  constructor(
    readonly rolloutId: string,
    readonly control: RolloutControlRecord,
  ) {
    super(
      `the rollout ${rolloutId} is being aborted (requested by ${control.by} at ${control.at}); nothing else can be asked of it`,
    );
    this.name = 'AbortPendingError';
  }
}

/**
 * Ends a live rollout here and now, without its orchestration (which was terminated, so nothing
 * else would): the candidate stops serving, production keeps all traffic. Only the given rollout.
 * Returns whether it changed the document.
 */
export async function endLiveRollout(
  store: Pick<RolloutStore, 'update'>,
  modelName: string,
  rolloutId: string,
  state: 'aborted' | 'rolled_back',
  reason: string,
  at: string,
): Promise<boolean> {
  let ended = false;
  await store.update(modelName, (current) => {
    ended = false;
    if (!current || current.rolloutId !== rolloutId || !LIVE_STATES.has(current.state)) return undefined;
    ended = true;
    return { ...current, state, percent: 0, updatedAt: at, endedAt: at, reason: reason.slice(0, 2_000) };
  });
  return ended;
}

/** A live rollout younger than this may not have its orchestration visible yet: not judged. */
export const ROLLOUT_RECONCILE_GRACE_MS = 2 * 60_000;

/**
 * Ends every live rollout whose orchestration is gone, failed, terminated or completed (none of
 * them will ever end the document, and the candidate would keep serving): aborted, with why.
 * `orchestration` answers undefined for an instance that does not exist. Returns the rollouts ended.
 */
export async function reconcileRollouts(deps: {
  rollouts: Pick<RolloutStore, 'listLive' | 'update'>;
  orchestration: (instanceId: string) => Promise<{ runtimeStatus: string } | undefined>;
  now: () => Date;
}): Promise<{ ended: string[]; errors: string[] }> {
  const ended: string[] = [];
  const errors: string[] = [];
  for (const doc of await deps.rollouts.listLive()) {
    try {
      const now = deps.now();
      if (now.getTime() - Date.parse(doc.updatedAt) < ROLLOUT_RECONCILE_GRACE_MS) continue;
      const state = await deps.orchestration(doc.rolloutId);
      const status = state?.runtimeStatus;
      if (status !== undefined && !['Failed', 'Terminated', 'Completed'].includes(status)) continue;
      const why = `the rollout orchestration ${doc.rolloutId} ${status ? `is ${status.toLowerCase()}` : 'does not exist'}; the candidate stops serving`;
      if (
        await endLiveRollout(deps.rollouts, doc.modelName, doc.rolloutId, 'aborted', why, now.toISOString())
      )
        ended.push(doc.rolloutId);
    } catch (err) {
      errors.push(`${doc.rolloutId}: ${(err as Error).message}`);
    }
  }
  return { ended, errors };
}
