import type { Container, JSONObject, OperationInput } from '@azure/cosmos';
import type { AuditSink } from '../audit/log';
import { NonRetriableError, TransientError } from '../errors';
import type {
  AliasMove,
  ModelHead,
  ModelVersion,
  MoveAliasInput,
  OverrideMark,
  RegisterVersionInput,
} from './records';
import {
  aliasMoveId,
  aliasMoveSchema,
  modelHeadSchema,
  modelVersionSchema,
  moveAliasInputSchema,
  OVERRIDE_PREFIX,
  overrideMarkSchema,
  PRODUCTION_ALIAS,
  registerVersionInputSchema,
  ROLLBACK_PREFIX,
  versionId,
} from './records';
import { modelNameSchema } from '../contracts/modelNames';

/** A registry error a caller can act on; `status` becomes the HTTP status of the problem response. */
export class RegistryError extends NonRetriableError {
  readonly status: number;
  constructor(code: string, message: string, status: number) {
    super(code, message);
    this.status = status;
  }
}

const MAX_ATTEMPTS = 8;

function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

function mapError(err: unknown, what: string): Error {
  const code = statusCode(err);
  const message = `${what}: ${(err as Error)?.message ?? String(err)}`;
  if (code === undefined || code === 408 || code === 429 || code >= 500) {
    return new TransientError('cosmos_unavailable', message, { cause: err });
  }
  return new NonRetriableError('cosmos_rejected', message, { cause: err });
}

type Etagged<T> = T & { _etag: string };

const body = (doc: object): JSONObject => doc as unknown as JSONObject;

const strip = <T extends object>(doc: T): T => {
  const out = { ...doc } as Record<string, unknown>;
  for (const k of Object.keys(out)) if (k.startsWith('_')) delete out[k];
  return out as T;
};

export interface ModelSummary {
  modelName: string;
  latestVersion: number;
  aliases: Record<string, number>;
  tags: Record<string, string>;
  updatedAt: string;
}

export interface ModelDetail {
  head: ModelHead;
  versions: ModelVersion[];
  /** Oldest first. */
  aliasHistory: AliasMove[];
}

/**
 * The model registry in Cosmos DB. Per model: numbered versions (digests, metrics, spec, run),
 * tags, aliases (`production`, `staging`, any name) and an append-only history of alias moves.
 *
 * Each model's head document carries the latest version number and the aliases; a registration or
 * an alias move replaces the head with `If-Match: <etag>` and creates the new version or history
 * document in the same transactional batch, so two concurrent writers cannot both win and a move is
 * never recorded without its history entry.
 */
export class ModelRegistry {
  constructor(
    private readonly container: Container,
    private readonly now: () => Date = () => new Date(),
    /** Records every alias move (a production move also anchors the audit head). */
    private readonly audit?: AuditSink,
  ) {}

  /**
   * Registers a model version. Idempotent on the model digest: registering the same bytes again
   * (a retried activity, or an identical retrain) returns the existing version.
   */
  async registerVersion(input: RegisterVersionInput): Promise<{ version: ModelVersion; created: boolean }> {
    const data = registerVersionInputSchema.parse(input);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const head = await this.readHead(data.modelName);
      const existing = await this.findByDigest(data.modelName, data.modelDigest);
      if (existing) return { version: existing, created: false };
      const at = this.now().toISOString();
      const n = (head?.latestVersion ?? 0) + 1;
      const version: ModelVersion = {
        id: versionId(n),
        kind: 'version',
        modelName: data.modelName,
        version: n,
        modelDigest: data.modelDigest,
        artifactUri: data.artifactUri,
        ...(data.artifact ? { artifact: data.artifact } : {}),
        datasetDigest: data.datasetDigest,
        metrics: data.metrics,
        trainingSpec: data.trainingSpec,
        algorithm: data.algorithm,
        runId: data.runId,
        createdAt: at,
        tags: data.tags,
      };
      const nextHead: ModelHead = head
        ? { ...strip(head), latestVersion: n, updatedAt: at }
        : {
            id: 'head',
            kind: 'head',
            modelName: data.modelName,
            latestVersion: n,
            aliasSeq: 0,
            aliases: {},
            tags: {},
            createdAt: at,
            updatedAt: at,
          };
      const outcome = await this.commit(data.modelName, [
        head
          ? { operationType: 'Replace', id: 'head', resourceBody: body(nextHead), ifMatch: head._etag }
          : { operationType: 'Create', resourceBody: body(nextHead) },
        { operationType: 'Create', resourceBody: body(version) },
      ]);
      if (outcome === 'ok') return { version, created: true };
      // Another registration won the race for this version number: read again and retry.
    }
    throw new TransientError('registry_busy', `model ${data.modelName}: too many concurrent registrations`);
  }

  /**
   * Points an alias at a version (or removes it with `to: null`) and appends the move to the
   * alias history. Exactly one of two concurrent moves of the same alias wins; the other fails with
   * `alias_conflict` (409). Repeating a move whose effect is already in place changes nothing.
   */
  async moveAlias(input: MoveAliasInput): Promise<{ moved: boolean; move: AliasMove | undefined }> {
    const data = moveAliasInputSchema.parse(input);
    const name = data.modelName;
    let seen: number | null | undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const head = await this.readHead(name);
      if (!head) throw new RegistryError('model_not_found', `model "${name}" is not registered`, 404);
      if (data.to !== null && data.to > head.latestVersion) {
        throw new RegistryError('version_not_found', `model "${name}" has no version ${data.to}`, 404);
      }
      const current = head.aliases[data.alias]?.version ?? null;
      if (current === data.to) {
        const last = await this.lastMove(name, data.alias);
        // A retry of a move whose audit entry failed records it now (same key: at most once).
        if (last && last.to === data.to) await this.auditMove(last);
        return { moved: false, move: last };
      }
      if (data.expectedFrom !== undefined && current !== data.expectedFrom) {
        throw new RegistryError(
          'alias_conflict',
          `alias "${data.alias}" of "${name}" points at ${describe(current)}, not ${describe(data.expectedFrom)}`,
          409,
        );
      }
      if (seen !== undefined && current !== seen) {
        throw new RegistryError(
          'alias_conflict',
          `alias "${data.alias}" of "${name}" was moved to ${describe(current)} by a concurrent change`,
          409,
        );
      }
      seen = current;
      const at = this.now().toISOString();
      const seq = head.aliasSeq + 1;
      const move: AliasMove = {
        id: aliasMoveId(seq),
        kind: 'aliasMove',
        modelName: name,
        seq,
        alias: data.alias,
        from: current,
        to: data.to,
        by: data.by,
        at,
        reason: data.reason,
        ...(data.runId ? { runId: data.runId } : {}),
        ...(data.approvalRef ? { approvalRef: data.approvalRef } : {}),
      };
      const aliases = { ...head.aliases };
      if (data.to === null) delete aliases[data.alias];
      else aliases[data.alias] = { version: data.to, seq, movedAt: at, movedBy: data.by };
      const nextHead: ModelHead = { ...strip(head), aliases, aliasSeq: seq, updatedAt: at };
      const outcome = await this.commit(name, [
        { operationType: 'Replace', id: 'head', resourceBody: body(nextHead), ifMatch: head._etag },
        { operationType: 'Create', resourceBody: body(move) },
      ]);
      if (outcome === 'ok') {
        // An audit failure fails the move's caller after the move: its retry finds the alias in
        // place and records the entry then (above), so the event is never dropped.
        await this.auditMove(move);
        return { moved: true, move };
      }
      // The head changed under us. If only something else changed (a registration, another
      // alias), the next attempt goes through; if this alias moved, the check above refuses.
    }
    throw new TransientError('registry_busy', `model ${name}: too many concurrent changes`);
  }

  private async auditMove(move: AliasMove): Promise<void> {
    if (!this.audit) return;
    const rollback = move.reason.startsWith(ROLLBACK_PREFIX);
    const override = move.reason.startsWith(OVERRIDE_PREFIX);
    await this.audit.record({
      kind: rollback ? 'rollback' : override ? 'override.deployed' : 'alias.moved',
      actor: move.by,
      subject: `model/${move.modelName}/${move.to ?? move.from ?? 0}`,
      data: {
        model: move.modelName,
        alias: move.alias,
        from: move.from,
        to: move.to,
        seq: move.seq,
        at: move.at,
        reason: move.reason,
        ...(move.runId ? { runId: move.runId } : {}),
        ...(move.approvalRef ? { approvalRef: move.approvalRef } : {}),
      },
      key: `alias:${move.modelName}:${move.seq}`,
      anchor: move.alias === PRODUCTION_ALIAS,
    });
  }

  /** Merges tags into the model (version omitted) or one version; an empty value removes a tag. */
  async setTags(
    modelName: string,
    tags: Record<string, string>,
    version?: number,
  ): Promise<Record<string, string>> {
    const id = version === undefined ? 'head' : versionId(version);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const doc = await this.readDoc<ModelHead | ModelVersion>(modelName, id);
      if (!doc)
        throw new RegistryError(
          'model_not_found',
          `model "${modelName}"${version ? ` version ${version}` : ''} not found`,
          404,
        );
      const merged = { ...doc.tags };
      for (const [k, v] of Object.entries(tags)) {
        if (v === '') delete merged[k];
        else merged[k] = v;
      }
      try {
        await this.container
          .item(id, modelName)
          .replace(
            { ...strip(doc), tags: merged },
            { accessCondition: { type: 'IfMatch', condition: doc._etag } },
          );
        return merged;
      } catch (err) {
        if (statusCode(err) !== 412) throw mapError(err, 'set tags');
      }
    }
    throw new TransientError('registry_busy', `model ${modelName}: too many concurrent changes`);
  }

  /**
   * Sets (or updates) the emergency-override mark of one version, ETag-conditioned. `update` gets
   * the mark in place (undefined at first) and returns the new one, or undefined to leave it.
   */
  async setOverrideMark(
    modelName: string,
    version: number,
    update: (current: OverrideMark | undefined) => OverrideMark | undefined,
  ): Promise<OverrideMark | undefined> {
    const id = versionId(version);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const doc = await this.readDoc<ModelVersion>(modelName, id);
      if (!doc)
        throw new RegistryError('version_not_found', `model "${modelName}" has no version ${version}`, 404);
      const next = update(doc.override);
      if (next === undefined) return doc.override;
      const mark = overrideMarkSchema.parse(next);
      try {
        await this.container
          .item(id, modelName)
          .replace(
            { ...strip(doc), override: mark },
            { accessCondition: { type: 'IfMatch', condition: doc._etag } },
          );
        return mark;
      } catch (err) {
        if (statusCode(err) !== 412) throw mapError(err, 'set override mark');
      }
    }
    throw new TransientError('registry_busy', `model ${modelName}: too many concurrent changes`);
  }

  async getHead(modelName: string): Promise<ModelHead | undefined> {
    const head = await this.readHead(modelName);
    return head ? modelHeadSchema.parse(strip(head)) : undefined;
  }

  async getVersion(modelName: string, version: number): Promise<ModelVersion | undefined> {
    const doc = await this.readDoc<ModelVersion>(modelName, versionId(version));
    return doc ? modelVersionSchema.parse(strip(doc)) : undefined;
  }

  /** The version an alias points at, or undefined when the alias is not set. */
  async resolveAlias(modelName: string, alias: string): Promise<ModelVersion | undefined> {
    const head = await this.readHead(modelName);
    const v = head?.aliases[alias]?.version;
    return v === undefined ? undefined : this.getVersion(modelName, v);
  }

  /** A version by number, or by alias name. */
  async resolve(modelName: string, ref: number | string): Promise<ModelVersion | undefined> {
    return typeof ref === 'number' ? this.getVersion(modelName, ref) : this.resolveAlias(modelName, ref);
  }

  async listModels(): Promise<ModelSummary[]> {
    const heads = await this.query<ModelHead>('SELECT * FROM c WHERE c.kind = "head"', [], undefined);
    return heads
      .map((h) => modelHeadSchema.parse(strip(h)))
      .map((h) => ({
        modelName: h.modelName,
        latestVersion: h.latestVersion,
        aliases: Object.fromEntries(Object.entries(h.aliases).map(([a, s]) => [a, s.version])),
        tags: h.tags,
        updatedAt: h.updatedAt,
      }))
      .sort((a, b) => (a.modelName < b.modelName ? -1 : a.modelName > b.modelName ? 1 : 0));
  }

  /** Head, every version (newest first) and the full alias history (oldest first). */
  async getModel(modelName: string): Promise<ModelDetail | undefined> {
    if (!modelNameSchema.safeParse(modelName).success) return undefined;
    const head = await this.getHead(modelName);
    if (!head) return undefined;
    const docs = await this.query<ModelVersion | AliasMove>(
      'SELECT * FROM c WHERE c.modelName = @name AND (c.kind = "version" OR c.kind = "aliasMove")',
      [{ name: '@name', value: modelName }],
      modelName,
    );
    const versions = docs
      .filter((d) => d.kind === 'version')
      .map((d) => modelVersionSchema.parse(strip(d)))
      .sort((a, b) => b.version - a.version);
    const aliasHistory = docs
      .filter((d) => d.kind === 'aliasMove')
      .map((d) => aliasMoveSchema.parse(strip(d)))
      .sort((a, b) => a.seq - b.seq);
    return { head, versions, aliasHistory };
  }

  private async lastMove(modelName: string, alias: string): Promise<AliasMove | undefined> {
    const moves = await this.query<AliasMove>(
      'SELECT * FROM c WHERE c.modelName = @name AND c.kind = "aliasMove" AND c.alias = @alias',
      [
        { name: '@name', value: modelName },
        { name: '@alias', value: alias },
      ],
      modelName,
    );
    const last = moves.sort((a, b) => b.seq - a.seq)[0];
    return last ? aliasMoveSchema.parse(strip(last)) : undefined;
  }

  private async findByDigest(modelName: string, digest: string): Promise<ModelVersion | undefined> {
    const found = await this.query<ModelVersion>(
      'SELECT * FROM c WHERE c.modelName = @name AND c.kind = "version" AND c.modelDigest = @digest',
      [
        { name: '@name', value: modelName },
        { name: '@digest', value: digest },
      ],
      modelName,
    );
    const first = found.sort((a, b) => a.version - b.version)[0];
    return first ? modelVersionSchema.parse(strip(first)) : undefined;
  }

  private async readHead(modelName: string): Promise<Etagged<ModelHead> | undefined> {
    return this.readDoc<ModelHead>(modelName, 'head');
  }

  private async readDoc<T>(modelName: string, id: string): Promise<Etagged<T> | undefined> {
    try {
      const { resource } = await this.container.item(id, modelName).read<Etagged<T>>();
      return resource ?? undefined;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw mapError(err, `read ${id}`);
    }
  }

  /** Queries scoped to one model name both by partition key and in the WHERE clause (the emulator ignores the former). */
  private async query<T>(
    query: string,
    parameters: { name: string; value: string }[],
    partitionKey: string | undefined,
  ): Promise<T[]> {
    try {
      const { resources } = await this.container.items
        .query<T>({ query, parameters }, partitionKey === undefined ? {} : { partitionKey })
        .fetchAll();
      return resources;
    } catch (err) {
      throw mapError(err, 'query models');
    }
  }

  /**
   * Runs operations as one transactional batch in the model's partition. Returns 'conflict' when
   * an ETag or id precondition failed (someone else wrote first), 'ok' when everything applied.
   */
  private async commit(modelName: string, ops: OperationInput[]): Promise<'ok' | 'conflict'> {
    // Each operation names the partition too (the Cosmos emulator reads it per operation).
    const withKey = ops.map((op) => ({ ...op, partitionKey: modelName }) as OperationInput);
    let codes: number[];
    try {
      const res = await this.container.items.batch(withKey, modelName);
      codes = (res.result ?? []).map((r) => r.statusCode);
      if (codes.length === 0) codes = [res.code ?? 500];
    } catch (err) {
      const code = statusCode(err);
      if (code === 409 || code === 412) return 'conflict';
      throw mapError(err, 'write model registry');
    }
    if (codes.every((c) => c < 400)) return 'ok';
    if (codes.some((c) => c === 409 || c === 412)) return 'conflict';
    throw mapError(
      { code: codes.find((c) => c >= 400 && c !== 424), message: `batch failed: ${codes.join(', ')}` },
      'write model registry',
    );
  }
}

function describe(v: number | null | undefined): string {
  return v === null || v === undefined ? 'nothing' : `version ${v}`;
}
