import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import type { Config } from '../../config';
import { NonRetriableError } from '../../errors';

/**
 * Whose code may run on this host, and from where (USER_CODE_LOCAL, USER_CODE_ROOT in
 * lib/config.ts; docs/training.md, "Whose code runs where"). A pipeline author is not the
 * operator: without this, a custom spec on the `local` backend, or the `score` command of a
 * python_function model on any backend, runs whatever command it names in whatever host folder.
 */
export interface UserCodePolicy {
  /** Pipeline authors' commands may run on this host (local jobs, score commands). */
  local: boolean;
  /** The folder every host `code` folder must be inside, absolute. */
  root: string;
}

export function userCodePolicy(
  config: Pick<Config, 'USER_CODE_LOCAL' | 'USER_CODE_ROOT'>,
  cwd: string = process.cwd(),
): UserCodePolicy {
  return { local: config.USER_CODE_LOCAL, root: resolve(cwd, config.USER_CODE_ROOT) };
}

/** `user_code_disabled` unless the policy lets pipeline authors' commands run on this host. */
export function requireLocalUserCode(policy: UserCodePolicy, what: string): void {
  if (!policy.local)
    throw new NonRetriableError(
      'user_code_disabled',
      `${what} would run a pipeline's own command on the app's host, which USER_CODE_LOCAL does not allow here (set USER_CODE_LOCAL=true only where pipeline authors may run code as the app)`,
    );
}

const inside = (root: string, dir: string): boolean => {
  const rel = relative(root, dir);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/**
 * The code folder, absolute and with symlinks resolved, provided it lies inside the root;
 * `code_outside_root` otherwise. A path outside the root is refused before the file system is
 * asked anything, so the answer never tells whether some host path exists. A path inside the root
 * that is not a folder is `code_folder_missing`; a symlink inside that leads out is
 * `code_outside_root` too.
 */
export async function confineCodeFolder(
  code: string,
  root: string,
  cwd: string = process.cwd(),
): Promise<string> {
  const outside = () =>
    new NonRetriableError(
      'code_outside_root',
      `the code folder ${code} is not inside the folder USER_CODE_ROOT allows (a relative path is resolved against the app's working directory)`,
    );
  const dir = resolve(cwd, code);
  const realRoot = await realpath(root).catch(() => root);
  if (!inside(root, dir) && !inside(realRoot, dir)) throw outside();
  const real = await realpath(dir).catch(() => undefined);
  if (real === undefined)
    throw new NonRetriableError('code_folder_missing', `the code folder ${code} does not exist`);
  if (!inside(realRoot, real)) throw outside();
  return real;
}
