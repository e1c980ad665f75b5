/**
 * The floor for bench/scoring: a bare node:http server doing the same work per request as the
 * scoring function (read the body, JSON.parse, check the rows against the feature schema, score
 * with the same in-process model, JSON answer) without any host. Run by scoring.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compileRowValidator } from '../../lib/serving/rows';
import { datasetFromRecords } from '../../lib/training/dataset';
import { loadModel } from '../../lib/training/models/predict';
import { logisticModel } from '../../test/support/lrModel';

const model = loadModel(logisticModel(20, 7));
const validate = compileRowValidator(model.definition.features);
const classes = model.classes ?? [];

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      const rows = validate(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      const P = model.predictProba(datasetFromRecords(rows, model.columnTypes));
      const K = classes.length;
      const probabilities = rows.map((_, i) => Array.from(P.subarray(i * K, i * K + K)));
      const predictions = probabilities.map((p) => classes[p.indexOf(Math.max(...p))]);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ model: 'bench', version: 1, classes, predictions, probabilities }));
    } catch (err) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: (err as Error).message }));
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log(`bare ready ${(server.address() as AddressInfo).port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
