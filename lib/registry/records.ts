import { z } from 'zod';
import { modelArtifactSchema } from '../contracts/modelArtifact';
import { aliasNameSchema, modelNameSchema } from '../contracts/modelNames';
import {
  DATASET_COLUMNAR_BYTES_TAG,
  DATASET_COLUMNAR_SHA256_TAG,
  DATASET_COLUMNAR_URI_TAG,
} from '../contracts/pipeline';

/** The alias scoring serves and deployments and rollbacks move. */
export const PRODUCTION_ALIAS = 'production';

/** Prefix of a rollback move's reason in the alias history. */
export const ROLLBACK_PREFIX = 'rollback: ';

/** Prefix of an emergency override's move reason in the alias history (docs/governance.md). */
export const OVERRIDE_PREFIX = 'override: ';

/** How an overridden version's post-hoc review stands: `required` until a reviewer decides. */
export const overrideReviewStateSchema = z.enum(['required', 'reviewed', 'rejected']);
export type OverrideReviewState = z.infer<typeof overrideReviewStateSchema>;

/**
 * The mark an emergency override leaves on a version: deployed without the quorum, by whom and
 * why, and the post-hoc review that must follow (its approval id, due time, and outcome).
 */
export const overrideMarkSchema = z.object({
  at: z.string(),
  by: z.string().min(1).max(320),
  reason: z.string().max(2_000),
  /** The alias move that deployed it. */
  moveSeq: z.number().int().positive(),
  review: overrideReviewStateSchema,
  reviewApprovalId: z.string().min(1).max(300),
  reviewRunId: z.string().min(1).max(200),
  reviewDue: z.string(),
  reviewedAt: z.string().optional(),
  reviewedBy: z.array(z.string()).optional(),
});
export type OverrideMark = z.infer<typeof overrideMarkSchema>;

/** The words shown wherever an overridden version appears. */
export function overrideLabel(mark: Pick<OverrideMark, 'review'>): string {
  return mark.review === 'required'
    ? 'override, review required'
    : mark.review === 'reviewed'
      ? 'override, reviewed'
      : 'override, rejected in review';
}

/**
 * The columnar dataset a model version was trained on, from the tags its run registered it with:
 * the drift reference of later runs. Undefined when the version has no such tags.
 */
export function columnarReferenceOf(
  tags: Readonly<Record<string, string>>,
): { columnar: { uri: string; sha256: string; bytes: number } } | undefined {
  const uri = tags[DATASET_COLUMNAR_URI_TAG];
  const sha256 = tags[DATASET_COLUMNAR_SHA256_TAG];
  if (!uri || !sha256) return undefined;
  return { columnar: { uri, sha256, bytes: Number(tags[DATASET_COLUMNAR_BYTES_TAG] ?? '0') } };
}

/**
 * Documents of the model registry (Cosmos container `models`, partition key `/modelName`). Every
 * document of one model lives in its partition, so a registration or an alias move is one
 * transactional batch: the ETag-checked head plus the new version or history entry.
 */
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a lower-case hex SHA-256');
const tagsSchema = z.record(z.string().min(1).max(128), z.string().max(256));

export const aliasStateSchema = z.object({
  version: z.number().int().positive(),
  seq: z.number().int().positive(),
  movedAt: z.string(),
  movedBy: z.string(),
});

/** One per model: latest version number, aliases, model-level tags. Its ETag serializes writers. */
export const modelHeadSchema = z.object({
  id: z.literal('head'),
  kind: z.literal('head'),
  modelName: z.string(),
  latestVersion: z.number().int().min(0),
  /** Number of alias moves so far; the next history entry is `aliasSeq + 1`. */
  aliasSeq: z.number().int().min(0),
  aliases: z.record(z.string(), aliasStateSchema),
  tags: tagsSchema,
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type ModelHead = z.infer<typeof modelHeadSchema>;

export const modelVersionSchema = z.object({
  id: z.string(),
  kind: z.literal('version'),
  modelName: z.string(),
  version: z.number().int().positive(),
  /**
   * The digest approval binds to: SHA-256 of a legacy model JSON's bytes, or an MLflow folder's
   * manifest digest. The artifact is refused if what is read hashes differently.
   */
  modelDigest: sha256Hex,
  /** Where the artifact lives (Blob URI or container/path): the JSON, or the folder's manifest. */
  artifactUri: z.string().min(1),
  /** An MLflow model folder (lib/contracts/modelArtifact.ts); absent = a legacy JSON artifact. */
  artifact: modelArtifactSchema.optional(),
  datasetDigest: sha256Hex,
  metrics: z.record(z.string(), z.number().nullable()),
  trainingSpec: z.record(z.string(), z.unknown()),
  algorithm: z.string(),
  runId: z.string().min(1),
  createdAt: z.string(),
  tags: tagsSchema,
  /** Set when an emergency override deployed this version without the quorum. */
  override: overrideMarkSchema.optional(),
});
export type ModelVersion = z.infer<typeof modelVersionSchema>;

/** Append-only: written once in the same batch as the head change, never replaced or deleted. */
export const aliasMoveSchema = z.object({
  id: z.string(),
  kind: z.literal('aliasMove'),
  modelName: z.string(),
  seq: z.number().int().positive(),
  alias: z.string(),
  from: z.number().int().positive().nullable(),
  to: z.number().int().positive().nullable(),
  by: z.string().min(1),
  at: z.string(),
  reason: z.string(),
  runId: z.string().optional(),
  approvalRef: z.string().optional(),
});
export type AliasMove = z.infer<typeof aliasMoveSchema>;

export const registerVersionInputSchema = z.object({
  modelName: modelNameSchema,
  modelDigest: sha256Hex,
  artifactUri: z.string().min(1),
  artifact: modelArtifactSchema.optional(),
  datasetDigest: sha256Hex,
  metrics: z.record(z.string(), z.number().nullable()),
  trainingSpec: z.record(z.string(), z.unknown()),
  algorithm: z.string().min(1),
  runId: z.string().min(1),
  tags: tagsSchema.default({}),
});
export type RegisterVersionInput = z.input<typeof registerVersionInputSchema>;

export const moveAliasInputSchema = z.object({
  modelName: modelNameSchema,
  alias: aliasNameSchema,
  /** The version the alias should point at; null removes the alias. */
  to: z.number().int().positive().nullable(),
  /**
   * The version the caller believes the alias points at now (null = unset). When given and the
   * alias has moved since, the move is refused: a promotion approved against version 3 must not
   * silently replace a version 4 that someone else promoted meanwhile.
   */
  expectedFrom: z.number().int().positive().nullable().optional(),
  by: z.string().min(1).max(256),
  reason: z.string().max(2_000).default(''),
  runId: z.string().optional(),
  approvalRef: z.string().optional(),
});
export type MoveAliasInput = z.input<typeof moveAliasInputSchema>;

export const versionId = (v: number): string => `version-${String(v).padStart(6, '0')}`;
export const aliasMoveId = (seq: number): string => `aliasmove-${String(seq).padStart(8, '0')}`;
