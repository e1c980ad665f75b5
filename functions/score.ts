import { app } from '@azure/functions';
import { getServices } from '../app/services';
import { createScoreHandler } from './support/scoreHandler';

/** `POST /api/models/{name}/predict`: scores rows with the production model, or a live rollout's candidate (see support/scoreHandler). */
app.http('score', {
  route: 'api/models/{name}/predict',
  methods: ['POST'],
  authLevel: 'function',
  handler: createScoreHandler(async () => (await getServices()).serving),
});
