import { ValidationError } from '../errors';
import resources from '../resources.json';

/**
 * Where a run may read a dataset from (a run's `source.blob`, a pipeline's `goldenSet`): only the
 * datasets container. The other containers hold models, reports, job folders and the outbox with
 * live approval links; reading them through a run would copy them into a dataset and its report.
 */
export const DATASET_SOURCE_CONTAINERS: readonly string[] = [resources.blobContainers.datasets];

/** What is wrong with a dataset blob's `container/path` (or its container and path), or undefined. */
export function datasetSourceProblem(container: string, path: string): string | undefined {
  if (!DATASET_SOURCE_CONTAINERS.includes(container)) {
    return `datasets are read only from the ${DATASET_SOURCE_CONTAINERS.join(', ')} container, not "${container}"`;
  }
  if (path.length === 0 || path.length > 1024) return 'the blob path must be 1 to 1024 characters';
  // Blob names are flat, but a client or proxy that normalizes URLs turns `a/../b` into another
  // blob (or out of the container): refuse anything that could be read as a relative step.
  if (path.includes('\\') || [...path].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    return 'the blob path has a backslash or a control character';
  }
  const segments = path.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..' || /^(?:%2e|\.){1,2}$/i.test(s))) {
    return 'the blob path has an empty, "." or ".." segment';
  }
  return undefined;
}

/** `container/path` split at its first slash (the path is empty when there is none). */
export function splitBlobRef(ref: string): { container: string; path: string } {
  const slash = ref.indexOf('/');
  return slash < 0
    ? { container: ref, path: '' }
    : { container: ref.slice(0, slash), path: ref.slice(slash + 1) };
}

/** Throws a ValidationError (400) naming `field` when a location is not a readable dataset blob. */
export function checkDatasetSource(location: { container: string; path: string }, field: string): void {
  const why = datasetSourceProblem(location.container, location.path);
  if (why) {
    throw new ValidationError(
      'invalid_dataset_blob',
      `${field} "${location.container}/${location.path}": ${why}`,
      { field },
    );
  }
}

/** Parses `container/path` naming a dataset blob; a ValidationError (400) naming `field` otherwise. */
export function parseDatasetBlob(ref: string, field: string): { container: string; path: string } {
  const location = splitBlobRef(ref);
  checkDatasetSource(location, field);
  return location;
}
