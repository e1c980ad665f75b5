import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import { readDataset } from '../../../lib/data/reading/readDataset';
import {
  buildReferenceProfile,
  decodeReferenceProfile,
  encodeReferenceProfile,
} from '../../../lib/data/profiling/referenceProfile';
import { conformTable } from '../../../lib/data/checking/conform';
import { datasetContractDigest } from '../../../lib/data/checking/report';
import type { ColumnOutcome } from '../../../lib/data/checking/validateTable';
import { validateClaimedColumns, validateTable } from '../../../lib/data/checking/validateTable';
import { everyTypeRow } from './helpers';

/**
 * A large table is validated by two threads that claim columns from a shared counter (offThread.ts).
 * Which thread does which column must not show in the report: these tests split the columns between
 * the validating side and a helper side in one process, with the helper's outcomes structured-cloned
 * as postMessage delivers them.
 */

const contract = parseDatasetContract({
  columns: [
    { name: 'n', type: 'number', nullable: true, max: 90 },
    { name: 'i', type: 'integer' },
    { name: 'b', type: 'boolean', nullable: true },
    { name: 'c', type: 'category', values: ['x', 'y', 'z'] },
    { name: 's', type: 'string', nullable: true },
    { name: 't', type: 'datetime' },
    // Digits: read as integers without a contract, so the helper must convert it to text itself.
    { name: 'code', type: 'category' },
  ],
  quality: { maxDuplicateRowFraction: 0 },
});

function csv(rows: number, shift: number): string {
  return [
    'n,i,b,c,s,t,code',
    ...Array.from({ length: rows }, (_, k) => [...everyTypeRow(k, shift), 100 + (k % 9)].join(',')),
  ].join('\n');
}

async function setup() {
  const key = { dataSha256: 'r'.repeat(64), contractSha256: datasetContractDigest(contract) };
  const ref = (await readDataset(Buffer.from(csv(3_000, 0)), { contract })).table;
  const profile = () =>
    decodeReferenceProfile(
      encodeReferenceProfile(buildReferenceProfile(conformTable(ref, contract)), key),
      key,
    );
  // Read without the contract, as a dataset ingested before its contract existed.
  const current = async () => (await readDataset(Buffer.from(csv(2_000, 2)))).table;
  const info = { rows: 3_000, columns: 7, sha256: 'r'.repeat(64) };
  return { profile, current, info };
}

/** Claims from a fixed list, then reports that none are left. */
function claimer(indices: number[], columns: number): () => number {
  let k = 0;
  return () => indices[k++] ?? columns;
}

describe('validation with columns shared between two threads', () => {
  it('gives the report of a single thread, whichever side validates which column', async () => {
    const { profile, current, info } = await setup();
    const dataset = { rows: 2_000, columns: 7 };
    const alone = validateTable({
      table: await current(),
      contract,
      dataset,
      reference: { profile: profile(), info },
    });
    expect(alone.report.summary.drift).not.toBe('skipped');
    expect(alone.report.violations.map((v) => v.rule)).toContain('max');

    for (const helperColumns of [[0, 3, 6], [1, 2, 4, 5], [6]]) {
      const table = await current();
      const helperTable = await current();
      // The helper's outcomes arrive as a message: cloned, so non-enumerable fields are gone.
      const elsewhere = structuredClone(
        validateClaimedColumns(helperTable, contract, profile(), claimer(helperColumns, 7)),
      ) as [number, ColumnOutcome][];
      expect(elsewhere.map(([i]) => i)).toEqual(helperColumns);
      const local = [0, 1, 2, 3, 4, 5, 6].filter((i) => !helperColumns.includes(i));
      const shared = validateTable(
        { table, contract, dataset, reference: { profile: profile(), info } },
        { share: { claim: claimer(local, 7), take: () => elsewhere } },
      );
      expect(JSON.stringify(shared.report)).toBe(JSON.stringify(alone.report));
    }
  });

  it('does not wait for the helper when this side validated every column', async () => {
    const { profile, current, info } = await setup();
    const take = jest.fn(() => [] as [number, ColumnOutcome][]);
    const result = validateTable(
      {
        table: await current(),
        contract,
        dataset: { rows: 2_000, columns: 7 },
        reference: { profile: profile(), info },
      },
      { share: { claim: claimer([0, 1, 2, 3, 4, 5, 6], 7), take } },
    );
    expect(take).not.toHaveBeenCalled();
    expect(result.report.columns).toHaveLength(7);
    expect(result.timings.helperWait).toBe(0);
  });

  it('fails, naming the column, when a claimed column never comes back', async () => {
    const { profile, current, info } = await setup();
    const table = await current();
    expect(() =>
      validateTable(
        {
          table,
          contract,
          dataset: { rows: 2_000, columns: 7 },
          reference: { profile: profile(), info },
        },
        { share: { claim: claimer([0, 1, 2, 3, 4, 5], 7), take: () => [] } },
      ),
    ).toThrow('column "code" was not validated');
  });
});
