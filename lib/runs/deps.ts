import { getServices } from '../../app/services';
import type { ApprovalSlots } from '../approval/slot';
import type { ApprovalStore } from '../approval/store';
import type { Config } from '../config';
import type { PipelineDefinition } from '../pipelines/definition';
import type { PipelineStore } from '../pipelines/store';
import type { ArtifactStore } from '../storage';
import type { RunStore } from './store';

/**
 * TRANSITIONAL — delete when activities/beginRun.ts, recordRunStep.ts, finishRun.ts,
 * loadPipelineVersion.ts and functions/cancelRun.ts are made from the services
 * (registerActivityFactory / withServices) and lib/runs/launch.ts takes `{ runs }` without this
 * type. Until then it hands them the app's one set of services (app/services.ts); it builds
 * nothing and keeps no state of its own.
 */
export interface RunDeps {
  config: Config;
  runs: RunStore;
  pipelines: PipelineStore<PipelineDefinition>;
  artifacts: ArtifactStore;
  /** A run's approval is withdrawn, and its pipeline's approval slot released, when the run ends. */
  approvals: ApprovalStore;
  slots: ApprovalSlots;
}

/** @deprecated Use the services a handler is made from (see the note above). */
export function getRunDeps(): Promise<RunDeps> {
  return getServices();
}
