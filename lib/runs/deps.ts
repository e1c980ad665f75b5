import { ApprovalSlots } from '../approval/slot';
import { ApprovalStore } from '../approval/store';
import type { Config } from '../config';
import { getConfig } from '../config';
import type { PipelineDefinition } from '../pipelines/definition';
import { PipelineStore } from '../pipelines/store';
import type { ArtifactStore } from '../storage';
import { getArtifactStore, getCosmos } from '../storage';
import { RunStore } from './store';

/** What the pipeline and run API and the run activities need; built once per process. */
export interface RunDeps {
  config: Config;
  runs: RunStore;
  pipelines: PipelineStore<PipelineDefinition>;
  artifacts: ArtifactStore;
  /** A run's approval is withdrawn, and its pipeline's approval slot released, when the run ends. */
  approvals: ApprovalStore;
  slots: ApprovalSlots;
}

async function build(config: Config): Promise<RunDeps> {
  const cosmos = getCosmos(config);
  // The local emulator starts empty; in Azure, Bicep creates the database and containers.
  if (config.COSMOS_KEY) await cosmos.ensure();
  const artifacts = getArtifactStore(config);
  if (config.ARTIFACT_STORAGE_CONNECTION) await artifacts.ensureContainers();
  return {
    config,
    runs: new RunStore(cosmos),
    pipelines: new PipelineStore<PipelineDefinition>(cosmos.container('pipelines')),
    artifacts,
    approvals: new ApprovalStore(cosmos.container('approvals')),
    slots: new ApprovalSlots(cosmos),
  };
}

let deps: Promise<RunDeps> | undefined;
export function getRunDeps(config?: Config): Promise<RunDeps> {
  deps ??= build(config ?? getConfig()).catch((err: unknown) => {
    deps = undefined;
    throw err;
  });
  return deps;
}
