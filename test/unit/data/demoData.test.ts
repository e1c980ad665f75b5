import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { validateTable } from '../../../lib/data/checking/validateTable';

const dataDir = path.resolve(__dirname, '..', '..', '..', 'data');
const contractOf = (name: string) =>
  parseDatasetContract(JSON.parse(readFileSync(path.join(dataDir, 'contracts', name), 'utf8')));
const load = (file: string, contract: ReturnType<typeof contractOf>) =>
  readDataset(readFileSync(path.join(dataDir, file)), { contract });

describe('the shipped demo data does what data/README.md says', () => {
  it('CPS 1985 wages pass their contract', async () => {
    const contract = contractOf('cps-wages-1985.json');
    const { table } = await load('cps-wages-1985.csv', contract);
    expect(table.rows).toBe(534);
    const { report } = validateTable({
      table,
      contract,
      dataset: { rows: table.rows, columns: table.columns.length },
    });
    expect(report.summary).toMatchObject({ status: 'passed', errors: 0 });
    expect(report.columns.find((c) => c.name === 'union')!.numeric).toMatchObject({
      min: 0,
      max: 1,
      mean: 438 / 534,
    });
  });

  it('Palmer penguins fail validation on the rows with missing or bad values', async () => {
    const contract = contractOf('penguins.json');
    const { table, format } = await load('penguins.jsonl', contract);
    expect(format).toBe('jsonl');
    const { report } = validateTable({
      table,
      contract,
      dataset: { rows: table.rows, columns: table.columns.length },
    });
    expect(report.summary.status).toBe('failed');
    const found = report.violations.map((v) => [v.rule, v.column, v.count, v.firstRows.slice(0, 2)]);
    expect(found).toEqual(
      expect.arrayContaining([
        ['nullable', 'Body Mass (g)', 2, [4, 340]],
        ['nullable', 'Sex', 10, [4, 9]],
        ['values', 'Sex', 1, [337]],
      ]),
    );
  });

  it('Seattle weather 2015 drifts from 2012, the critical label included', async () => {
    const contract = contractOf('seattle-weather.json');
    const ref = await load('seattle-weather-2012.csv', contract);
    const cur = await load('seattle-weather-2015.csv', contract);
    const { report } = validateTable({
      table: cur.table,
      contract,
      dataset: { rows: cur.table.rows, columns: 6 },
      reference: { table: ref.table, info: { rows: ref.table.rows, columns: 6 } },
    });
    expect(report.summary).toMatchObject({ status: 'failed', errors: 0, drift: 'drifted' });
    expect(report.drift).toMatchObject({ criticalDrifted: ['weather'] });
    expect(report.schemaDiff!.changes).toEqual([
      expect.objectContaining({ kind: 'valuesChanged', column: 'weather', breaking: false }),
    ]);
  });
});
