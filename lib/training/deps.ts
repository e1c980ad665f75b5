import { getServices } from '../../app/services';
import type { TrainingBackends } from './backends/fromConfig';

/**
 * TRANSITIONAL — only functions/cancelRun.ts still calls this; delete it when that file is made
 * from the services (withServices). It hands over the app's one set of services (app/services.ts)
 * and builds nothing.
 *
 * @deprecated Use the services a handler is made from.
 */
export function getTrainingDeps(): Promise<{ backend: TrainingBackends }> {
  return getServices();
}
