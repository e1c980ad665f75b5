import { app } from '@azure/functions';
import { getProductionModels } from '../lib/serving/deps';
import { createScoreHandler } from './support/scoreHandler';

/** `POST /api/models/{name}/predict`: scores rows with the production model (see support/scoreHandler). */
app.http('score', {
  route: 'models/{name}/predict',
  methods: ['POST'],
  authLevel: 'function',
  handler: createScoreHandler(() => getProductionModels()),
});
