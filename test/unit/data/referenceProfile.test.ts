import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import type { DatasetContract } from '../../../lib/contracts/datasetContract';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { validateColumnarOffThread } from '../../../lib/data/checking/offThread';
import { encodeColumnar } from '../../../lib/data/reading/columnar';
import {
  buildReferenceProfile,
  decodeReferenceProfile,
  encodeReferenceProfile,
  REFERENCE_SAMPLE,
} from '../../../lib/data/profiling/referenceProfile';
import { conformTable } from '../../../lib/data/checking/conform';
import { datasetContractDigest } from '../../../lib/data/checking/report';
import { validateTable } from '../../../lib/data/checking/validateTable';
import { everyTypeRow } from './helpers';

const dataDir = path.resolve(__dirname, '..', '..', '..', 'data');
const contract = parseDatasetContract(
  JSON.parse(readFileSync(path.join(dataDir, 'contracts', 'seattle-weather.json'), 'utf8')),
);
const load = async (file: string) =>
  (await readDataset(readFileSync(path.join(dataDir, file)), { contract })).table;
const key = (c: DatasetContract = contract) => ({
  dataSha256: 'a'.repeat(64),
  contractSha256: datasetContractDigest(c),
});
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

describe('reference profiles: drift against a stored profile instead of the rows', () => {
  it('gives the same report as validating against the rows', async () => {
    const fromRows = validateTable({
      table: await load('seattle-weather-2015.csv'),
      contract,
      dataset: { rows: 365, columns: 6 },
      reference: { table: await load('seattle-weather-2012.csv'), info: { rows: 366, columns: 6 } },
    });
    expect(fromRows.referenceProfile).toBeDefined();
    const bytes = encodeReferenceProfile(fromRows.referenceProfile!, key());
    const fromProfile = validateTable({
      table: await load('seattle-weather-2015.csv'),
      contract,
      dataset: { rows: 365, columns: 6 },
      reference: { profile: decodeReferenceProfile(bytes, key()), info: { rows: 366, columns: 6 } },
    });
    expect(fromProfile.referenceProfile).toBeUndefined();
    expect(fromProfile.report.summary.drift).toBe('drifted');
    expect(fromProfile.report).toEqual(fromRows.report);
  });

  it('the same report from rows or profile when the schemas differ and every column type is present', async () => {
    const wide = parseDatasetContract({
      columns: [
        { name: 'n', type: 'number', nullable: true },
        { name: 'i', type: 'integer' },
        { name: 'b', type: 'boolean', nullable: true },
        { name: 'c', type: 'category', values: ['x', 'y', 'z'] },
        { name: 's', type: 'string', nullable: true },
        { name: 't', type: 'datetime' },
      ],
      quality: { unexpectedColumns: 'warning' },
    });
    const rows = (n: number, shift: number, extra: boolean) =>
      [
        `n,i,b,c,s,t${extra ? ',extra' : ''}`,
        ...Array.from({ length: n }, (_, k) => [...everyTypeRow(k, shift), ...(extra ? [k] : [])].join(',')),
      ].join('\n');
    const reference = (await readDataset(Buffer.from(rows(3_000, 0, false)), { contract: wide })).table;
    const current = async () =>
      (await readDataset(Buffer.from(rows(2_000, 2, true)), { contract: wide })).table;
    const fromRows = validateTable({
      table: await current(),
      contract: wide,
      dataset: { rows: 2_000, columns: 7 },
      reference: { table: reference, info: { rows: 3_000, columns: 6, sha256: 'r'.repeat(64) } },
    });
    const bytes = encodeReferenceProfile(fromRows.referenceProfile!, key(wide));
    const fromProfile = validateTable({
      table: await current(),
      contract: wide,
      dataset: { rows: 2_000, columns: 7 },
      reference: {
        profile: decodeReferenceProfile(bytes, key(wide)),
        info: { rows: 3_000, columns: 6, sha256: 'r'.repeat(64) },
      },
    });
    expect(fromRows.report.schemaDiff!.changes.map((c) => c.kind)).toContain('columnAdded');
    expect(fromRows.report.summary.drift).not.toBe('skipped');
    const tested = 'columns' in fromRows.report.drift ? fromRows.report.drift.columns : [];
    expect(tested.filter((c) => c.status !== 'skipped').map((c) => c.column)).toEqual(['n', 'i', 'b', 'c']);
    expect(JSON.stringify(fromProfile.report)).toBe(JSON.stringify(fromRows.report));
  });

  it('encodes deterministically and keeps large numeric columns as a sorted sample', async () => {
    const n = REFERENCE_SAMPLE * 2 + 7;
    const csv = [
      'x,flag,kind',
      ...Array.from({ length: n }, (_, i) => `${(i * 7919) % 1000},${i % 3 === 0},k${i % 4}`),
    ].join('\n');
    const wide = parseDatasetContract({
      columns: [
        { name: 'x', type: 'integer' },
        { name: 'flag', type: 'boolean' },
        { name: 'kind', type: 'category', values: ['k0', 'k1', 'k2', 'k3'] },
      ],
    });
    const { table } = await readDataset(Buffer.from(csv), { contract: wide });
    const built = buildReferenceProfile(conformTable(table, wide));
    const a = encodeReferenceProfile(built, key(wide));
    expect(
      Buffer.from(encodeReferenceProfile(buildReferenceProfile(conformTable(table, wide)), key(wide))),
    ).toEqual(Buffer.from(a));
    const back = decodeReferenceProfile(a, key(wide));
    const sorted = back.profile.stats[0]!.sorted!;
    expect(back.profile.stats[0]!.sampled).toBe(sorted.length);
    expect(sorted.length).toBeLessThanOrEqual(REFERENCE_SAMPLE);
    expect(Array.from(sorted)).toEqual(Array.from(built.profile.stats[0]!.sorted!));
    expect(back.profile.columns[0]!.numeric!.count).toBe(n); // count, min, max, mean stay exact
    expect(back.profile.stats[1]!.booleanCounts).toEqual({
      trueCount: Math.ceil(n / 3),
      falseCount: n - Math.ceil(n / 3),
    });
    expect(Array.from(back.profile.stats[2]!.codeCounts!)).toEqual(
      Array.from(built.profile.stats[2]!.codeCounts!),
    );
    expect(back.profile.columns[2]!.codeCounts).toBeDefined(); // what the schema diff's inference reads
    expect(back.table.rows).toBe(n);
  });

  it('refuses a profile of other data, another contract, or damaged bytes', async () => {
    const built = buildReferenceProfile(conformTable(await load('seattle-weather-2012.csv'), contract));
    const bytes = encodeReferenceProfile(built, key());
    expect(codeOf(() => decodeReferenceProfile(bytes, { ...key(), dataSha256: 'b'.repeat(64) }))).toBe(
      'REFERENCE_PROFILE_INVALID',
    );
    const other = parseDatasetContract({ ...contract, drift: { ...contract.drift, enabled: false } });
    expect(codeOf(() => decodeReferenceProfile(bytes, key(other)))).toBe('REFERENCE_PROFILE_INVALID');
    expect(codeOf(() => decodeReferenceProfile(bytes.subarray(0, 40), key()))).toBe(
      'REFERENCE_PROFILE_INVALID',
    );
    expect(codeOf(() => decodeReferenceProfile(Buffer.from('not a profile at all'), key()))).toBe(
      'REFERENCE_PROFILE_INVALID',
    );
    // A field of the header that is wrong is named.
    const len = Buffer.from(bytes).readUInt32LE(8);
    const header = JSON.parse(Buffer.from(bytes).toString('utf8', 12, 12 + len)) as { columns: object[] };
    const broken = Buffer.from(
      JSON.stringify({ ...header, columns: [{ ...header.columns[0], sorted: { offset: -8, count: 1 } }] }),
    );
    const framed = Buffer.concat([Buffer.from(bytes.subarray(0, 12)), broken]);
    framed.writeUInt32LE(broken.length, 8);
    expect(() => decodeReferenceProfile(framed, key())).toThrow(
      /columns\[0\]\.sorted\.offset: expected an integer ≥ 0/,
    );
    const lying = Buffer.from(bytes);
    lying.writeUInt32LE(lying.readUInt32LE(8) + 1_000_000, 8);
    expect(codeOf(() => decodeReferenceProfile(lying, key()))).toBe('REFERENCE_PROFILE_INVALID');
  });

  it('off the event loop: returns the encoded profile built from the rows, then validates with it', async () => {
    const columnar = (t: Awaited<ReturnType<typeof load>>) =>
      new Uint8Array(Buffer.concat(encodeColumnar(t)));
    const current = columnar(await load('seattle-weather-2015.csv'));
    const first = await validateColumnarOffThread({
      current: current.slice(),
      reference: columnar(await load('seattle-weather-2012.csv')),
      referenceKey: key(),
      contract,
      dataset: { rows: 0, columns: 0 },
    });
    expect(first.referenceProfile).toBeInstanceOf(Uint8Array);
    const second = await validateColumnarOffThread({
      current,
      referenceProfile: first.referenceProfile!,
      referenceKey: key(),
      contract,
      dataset: { rows: 0, columns: 0 },
    });
    expect(second.referenceProfile).toBeUndefined();
    expect(second.report).toEqual(first.report);
  });
});
