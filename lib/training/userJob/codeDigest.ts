import { NonRetriableError } from '../../errors';
import { manifestDigest, readManifest } from '../../mlmodel/folder';
import { CODE_MAX_BYTES, SKIPPED_FOLDERS } from '../backends/azuremlUserJob';

/**
 * The digest of a user job's code folder: the manifest digest (every file's path, size and SHA-256,
 * as for model folders) without `.git`, `__pycache__` and `.ipynb_checkpoints`, which are not code.
 * The same digest names an Azure ML code asset uploaded from the folder. Recorded on the job result
 * (`codeDigest`) and shown on the run's train step, so an approver sees which code made the model.
 * Undefined when the folder cannot be read within the code size limit (the job still runs).
 */
export async function codeFolderDigest(
  dir: string,
  maxBytes: number = CODE_MAX_BYTES,
): Promise<string | undefined> {
  try {
    const read = await readManifest(dir, { maxBytes });
    const kept = read.manifest.filter((f) => !f.path.split('/').some((seg) => SKIPPED_FOLDERS.has(seg)));
    return manifestDigest(kept);
  } catch (err) {
    if (err instanceof NonRetriableError) return undefined;
    throw err;
  }
}
