import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CustomTrainingSpec } from '../../contracts/trainingSpec';
import { SCORE_COMMAND_VARIABLE_NAMES, SLUICE_VARIABLE_NAMES } from '../../contracts/job';
import { NonRetriableError } from '../../errors';
import { commandArgv } from './command';
import { resolveExecutable } from './process';
import type { UserCodePolicy } from './codePolicy';
import { confineCodeFolder, requireLocalUserCode } from './codePolicy';

/**
 * What can be known of a local user job before anything starts: its code folder exists, its
 * commands parse, and their programs are found (as the job will look them up: a path with a `/`
 * inside the code folder, a bare name on PATH). The local backend runs it at submit, so a typo fails
 * the run at once with a named code, and `PUT /api/pipelines/{name}` runs the folder part of it, so
 * a pipeline naming a folder that is not there is refused with 400.
 *
 * A relative `code` is resolved against `cwd`: the app's working directory (the Functions host's,
 * or devhost's), which is the folder the app was started from.
 */
export interface LocalJobPlan {
  /** The code folder, absolute. */
  code: string;
  /** The training command's program, resolved. */
  program: string;
  /** The score command's program, when the spec names one. */
  scoreProgram?: string;
}

export type LocalJobField = 'code' | 'command' | 'score';

/** A preflight failure, with the spec field it is about. */
export class LocalJobError extends NonRetriableError {
  constructor(
    code: string,
    message: string,
    readonly field: LocalJobField,
  ) {
    super(code, message);
  }
}

/** The code folder, absolute; `code_folder_missing` when it is not a folder. */
export async function resolveCodeFolder(code: string, cwd: string = process.cwd()): Promise<string> {
  const dir = resolve(cwd, code);
  const found = await stat(dir).catch(() => undefined);
  if (!found?.isDirectory())
    throw new LocalJobError(
      'code_folder_missing',
      `the code folder ${code}${dir === code ? '' : ` (${dir})`} ${found ? 'is not a folder' : 'does not exist'}`,
      'code',
    );
  return dir;
}

async function programOf(
  command: string,
  known: readonly string[],
  dir: string,
  pathVar: string | undefined,
  field: LocalJobField,
): Promise<string> {
  try {
    // Placeholders stand for themselves: only the program (the first word) is looked up.
    const argv = commandArgv(command, Object.fromEntries(known.map((n) => [n, `\${${n}}`])), known);
    if (!argv[0]) throw new NonRetriableError('bad_command', 'the command has no program');
    return await resolveExecutable(argv[0], dir, pathVar);
  } catch (err) {
    if (err instanceof NonRetriableError)
      throw new LocalJobError(
        err.code,
        field === 'score' ? `the score command: ${err.message}` : err.message,
        field,
      );
    throw err;
  }
}

/**
 * The host's rules for users' code (USER_CODE_LOCAL, USER_CODE_ROOT): `user_code_disabled` when
 * local jobs may not run here, `code_outside_root` when the folder is not inside the root. Returns
 * the code folder with symlinks resolved.
 */
export async function checkUserCodePolicy(
  code: string,
  policy: UserCodePolicy,
  options: { cwd?: string; local?: boolean } = {},
): Promise<string> {
  try {
    if (options.local ?? true) requireLocalUserCode(policy, 'a custom job on the local backend');
    return await confineCodeFolder(code, policy.root, options.cwd);
  } catch (err) {
    if (err instanceof NonRetriableError && !(err instanceof LocalJobError))
      throw new LocalJobError(err.code, err.message, 'code');
    throw err;
  }
}

export async function preflightLocalJob(
  spec: Pick<CustomTrainingSpec, 'code' | 'command' | 'score'>,
  options: { cwd?: string; pathVar?: string; policy?: UserCodePolicy } = {},
): Promise<LocalJobPlan> {
  const code = await resolveCodeFolder(
    options.policy ? await checkUserCodePolicy(spec.code, options.policy, options) : spec.code,
    options.cwd,
  );
  if (spec.command === undefined)
    throw new LocalJobError('bad_command', 'a custom job on the local backend needs a command', 'command');
  const pathVar = options.pathVar ?? process.env.PATH;
  const program = await programOf(spec.command, SLUICE_VARIABLE_NAMES, code, pathVar, 'command');
  const plan: LocalJobPlan = { code, program };
  if (spec.score !== undefined)
    plan.scoreProgram = await programOf(spec.score, SCORE_COMMAND_VARIABLE_NAMES, code, pathVar, 'score');
  return plan;
}
