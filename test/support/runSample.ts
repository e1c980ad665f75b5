import type { RunDocument } from '../../lib/contracts/runDocument';
import { newRunDocument } from '../../lib/runs/document';

/**
 * A new run's document as an HTTP start leaves it (version 1 of `pipeline`, its instance named as
 * the run, a blob dataset): the run every store and lock test starts from.
 */
export function sampleRunDocument(
  id: string,
  pipeline: string,
  at: string,
  by = 'ana@example.com',
): RunDocument {
  return newRunDocument({
    id,
    pipeline,
    pipelineVersion: 1,
    instanceId: id,
    trigger: { kind: 'http', by },
    source: { kind: 'blob', uri: 'http://127.0.0.1/devstoreaccount1/datasets/a.csv' },
    at,
  });
}

/** A new run's document for a CSV upload by a@example.com: the run the console and rollout unit tests render. */
export function uploadedRunDocument(id: string, pipeline: string, at: string): RunDocument {
  return newRunDocument({
    id,
    pipeline,
    pipelineVersion: 1,
    instanceId: id,
    trigger: { kind: 'http', by: 'a@example.com' },
    source: { kind: 'upload', uri: 'u', sha256: 'x'.repeat(64), bytes: 1, format: 'csv' },
    at,
  });
}
