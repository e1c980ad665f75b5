/**
 * `sluice deploy MODEL --version N --override --reason "…"`: the emergency override
 * (docs/governance.md). Puts registered version N of MODEL in production without the approval
 * quorum; the server allows it only to a caller with the Sluice.BreakGlass app role (in Azure) or
 * the host's master key (locally, --key), records it in the audit trail, tells every reviewer and
 * opens a post-hoc review. An ordinary deployment is a run that reviewers approve (`sluice run`),
 * so without --override the command refuses and says so. This file checks the arguments and
 * builds the request; cli/sluice.ts sends it.
 */

export const DEPLOY_COMMAND = {
  usage: 'sluice deploy MODEL --version N --override --reason "…"',
  about:
    'Emergency override: put version N of MODEL in production now, without the approval quorum.\n' +
    'Needs the Sluice.BreakGlass app role (App Service Authentication) or, locally, the master key\n' +
    '(--key). Every reviewer of the pipeline is told at once, the version is marked "override,\n' +
    'review required" and a post-hoc review opens that must be decided in the pipeline\'s approval\n' +
    'timeout, else it is escalated. A refused attempt is recorded in the audit trail too.\n' +
    'Ordinary deployments go through a run and its reviewers: `sluice run PIPELINE`.',
  options: {
    version: { type: 'string' as const },
    override: { type: 'boolean' as const, default: false },
    reason: { type: 'string' as const },
  },
  optionHelp: `  --version N              the registered version to deploy
  --override               required: say that the approval quorum is bypassed
  --reason "…"             why (at least 10 characters; recorded and sent to every reviewer)`,
  examples: [
    'sluice deploy churn --version 7 --override --reason "v8 returns NaN for new customers; back to v7 now"',
  ],
};

/** A mistake in the command's arguments (cli/sluice.ts turns it into a usage error, exit 2). */
export class DeployUsageError extends Error {}

/** Checks the arguments and builds `POST /api/models/{MODEL}/override`. */
export function deployRequest(
  model: string | undefined,
  options: { version?: string; override?: boolean; reason?: string },
): { path: string; body: { data: string; type: string } } {
  if (!model) throw new DeployUsageError('missing MODEL');
  if (!options.override) {
    throw new DeployUsageError(
      'sluice deploy only does the emergency override (--override): an ordinary deployment is a run its reviewers approve (sluice run PIPELINE)',
    );
  }
  const version = Number(options.version);
  if (!options.version || !Number.isInteger(version) || version < 1)
    throw new DeployUsageError(`--version must be a version number, got ${options.version ?? 'nothing'}`);
  const reason = options.reason?.trim() ?? '';
  if (reason.length < 10)
    throw new DeployUsageError('--reason must say why the quorum is bypassed (at least 10 characters)');
  return {
    path: `/api/models/${encodeURIComponent(model)}/override`,
    body: { data: JSON.stringify({ version, reason }), type: 'application/json' },
  };
}

/** One line for a person: what moved and what follows. */
export function describeOverride(r: {
  modelName?: string;
  from?: number | null;
  to?: number;
  review?: { approvalId?: string; due?: string };
  notified?: string[];
}): string {
  return (
    `OVERRIDE: ${r.modelName} production ${r.from ?? 'nothing'} -> ${r.to}; marked "override, review required".\n` +
    `${r.notified?.length ?? 0} reviewer(s) told; review ${r.review?.approvalId ?? '?'} due ${r.review?.due ?? '?'}.`
  );
}
