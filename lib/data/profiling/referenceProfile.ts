import type { Column, ParseIssues, Table } from '../table';
import type { ColumnType } from '../../contracts/datasetContract';
import { COLUMN_TYPES, HeaderCheck } from '../reading/headerCheck';
import { isDictionary } from '../table';
import type { ColumnProfile, ColumnStats, TableProfile } from './profile';
import type { DatasetInfo } from '../checking/report';
import { attachCodeCounts, profileTable } from './profile';

/**
 * What drift and the schema diff need of a reference dataset, without its rows: the skeleton
 * (names, types, dictionaries), the profile, and per numeric column a sorted systematic sample of
 * at most REFERENCE_SAMPLE values. It is computed once per (reference data, contract) and stored
 * next to the data, so validating new data against a production model's 750k-row training set
 * reads a few megabytes instead of the whole columnar form and never re-profiles it.
 *
 *   "SLUIREF1" | u32 LE header length | header JSON (UTF-8) | zero padding to 8 | Float64 samples
 *
 * The header names the columnar digest and contract digest it was built from; a reader checks both,
 * so a profile can never be applied to other data or another contract's reading of it.
 */

/** Largest number of values per numeric reference column that drift compares with (see ProfileOptions). */
export const REFERENCE_SAMPLE = 100_000;
export const REFERENCE_PROFILE_MAGIC = 'SLUIREF1';
export const REFERENCE_PROFILE_VERSION = 1;
export const REFERENCE_PROFILE_CONTENT_TYPE = 'application/vnd.sluice.reference-profile';

export interface ReferenceProfile {
  /** Names, types, dictionaries and parse issues; no values. */
  table: Table;
  profile: TableProfile;
  /** What the report says of the reference besides rows and columns (digest, bytes, format). */
  info?: ReferenceInfo;
}

export type ReferenceInfo = Omit<DatasetInfo, 'rows' | 'columns'>;

export interface ReferenceProfileKey {
  /**
   * SHA-256 of the stored bytes the profile describes: the reference's columnar form, or the raw
   * upload for a raw dataset fixed in the contract (so a cached profile spares parsing it).
   */
  dataSha256: string;
  /** `contractDigest` of the contract the reference was read with. */
  contractSha256: string;
}

/** Where a reference profile is stored, in the datasets container: one name per (data, contract, version). */
export function referenceProfilePath(key: ReferenceProfileKey): string {
  return `reference-profiles/v${REFERENCE_PROFILE_VERSION}/${key.dataSha256}/${key.contractSha256}`;
}

/** A table's names, types and dictionaries without its rows. */
export function skeleton(table: Table): Table {
  return {
    rows: table.rows,
    columns: table.columns.map((c): Column => {
      if (isDictionary(c)) return { ...c, codes: new Int32Array(0) };
      if (c.type === 'boolean') return { ...c, values: new Uint8Array(0) };
      return { ...c, values: new Float64Array(0) };
    }),
  };
}

/** Profiles a reference (already conformed to the contract): a sample for large numeric columns. */
export function buildReferenceProfile(conformed: Table): ReferenceProfile {
  return {
    table: skeleton(conformed),
    profile: profileTable(conformed, { sampleAbove: REFERENCE_SAMPLE }),
  };
}

interface HeaderColumn {
  name: string;
  type: ColumnType;
  issues: ParseIssues;
  dictionary?: string[];
  /** The report's column profile (Sluice's own output, written by encodeReferenceProfile). */
  profile: Record<string, unknown>;
  codeCounts?: number[];
  booleanCounts?: { trueCount: number; falseCount: number };
  sorted?: { offset: number; count: number };
  sampled?: number;
}

interface Header extends ReferenceProfileKey {
  format: 'sluice-reference-profile';
  version: typeof REFERENCE_PROFILE_VERSION;
  rows: number;
  columns: HeaderColumn[];
  info?: ReferenceInfo;
}

function checkInfo(c: HeaderCheck, v: unknown): ReferenceInfo {
  const o = c.object(v, 'info');
  const info: ReferenceInfo = {};
  if (o.sha256 !== undefined) info.sha256 = c.string(o.sha256, 'info.sha256');
  if (o.bytes !== undefined) info.bytes = c.int(o.bytes, 'info.bytes', 0);
  if (o.format !== undefined)
    info.format = c.oneOf(o.format, 'info.format', ['csv', 'jsonl', 'parquet'] as const);
  return info;
}

/** Checks a parsed header's shape (by hand: see headerCheck.ts), naming the first wrong field. */
function checkHeader(json: unknown): Header {
  const c = new HeaderCheck((message) => new ReferenceProfileError(`reference profile header: ${message}`));
  const h = c.object(json, 'header');
  return {
    format: c.oneOf(h.format, 'format', ['sluice-reference-profile'] as const),
    version: c.oneOf(h.version, 'version', [REFERENCE_PROFILE_VERSION] as const),
    dataSha256: c.string(h.dataSha256, 'dataSha256'),
    contractSha256: c.string(h.contractSha256, 'contractSha256'),
    rows: c.int(h.rows, 'rows', 0),
    ...(h.info !== undefined ? { info: checkInfo(c, h.info) } : {}),
    columns: c.array(h.columns, 'columns').map((v, i) => {
      const p = `columns[${i}]`;
      const col = c.object(v, p);
      const out: HeaderColumn = {
        name: c.string(col.name, `${p}.name`),
        type: c.oneOf(col.type, `${p}.type`, COLUMN_TYPES),
        issues: c.issues(col.issues, `${p}.issues`),
        profile: c.object(col.profile, `${p}.profile`),
      };
      if (col.dictionary !== undefined) out.dictionary = c.strings(col.dictionary, `${p}.dictionary`);
      if (col.codeCounts !== undefined) out.codeCounts = c.ints(col.codeCounts, `${p}.codeCounts`, 0);
      if (col.booleanCounts !== undefined) {
        const b = c.object(col.booleanCounts, `${p}.booleanCounts`);
        out.booleanCounts = {
          trueCount: c.int(b.trueCount, `${p}.booleanCounts.trueCount`, 0),
          falseCount: c.int(b.falseCount, `${p}.booleanCounts.falseCount`, 0),
        };
      }
      if (col.sorted !== undefined) {
        const o = c.object(col.sorted, `${p}.sorted`);
        out.sorted = {
          offset: c.int(o.offset, `${p}.sorted.offset`, 0),
          count: c.int(o.count, `${p}.sorted.count`, 0),
        };
      }
      if (col.sampled !== undefined) out.sampled = c.int(col.sampled, `${p}.sampled`, 0);
      return out;
    }),
  };
}

export class ReferenceProfileError extends Error {
  readonly code = 'REFERENCE_PROFILE_INVALID';
}

/** The stored form (deterministic: the same profile always gives the same bytes). */
export function encodeReferenceProfile(ref: ReferenceProfile, key: ReferenceProfileKey): Uint8Array {
  const samples: Float64Array[] = [];
  let offset = 0;
  const columns = ref.table.columns.map((col, i) => {
    const stats: ColumnStats = ref.profile.stats[i] ?? {};
    const { codeCounts, ...profile } = ref.profile.columns[i]!;
    const out: HeaderColumn = {
      name: col.name,
      type: col.type,
      issues: col.issues,
      profile,
    };
    if (isDictionary(col)) out.dictionary = col.dictionary;
    const counts = stats.codeCounts ?? codeCounts;
    if (counts) out.codeCounts = Array.from(counts);
    if (stats.booleanCounts) out.booleanCounts = stats.booleanCounts;
    if (stats.sorted) {
      out.sorted = { offset, count: stats.sorted.length };
      samples.push(stats.sorted);
      offset += stats.sorted.byteLength;
    }
    if (stats.sampled !== undefined) out.sampled = stats.sampled;
    return out;
  });
  const header: Header = {
    format: 'sluice-reference-profile',
    version: REFERENCE_PROFILE_VERSION,
    ...key,
    rows: ref.table.rows,
    columns,
    ...(ref.info ? { info: ref.info } : {}),
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const start = 12 + json.length + ((8 - ((12 + json.length) % 8)) % 8);
  const out = new Uint8Array(start + offset);
  Buffer.from(out.buffer).write(REFERENCE_PROFILE_MAGIC, 0, 'latin1');
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  let at = start;
  for (const s of samples) {
    out.set(new Uint8Array(s.buffer, s.byteOffset, s.byteLength), at);
    at += s.byteLength;
  }
  return out;
}

/** Reads a stored reference profile, checking it was built from `key`'s data and contract. */
export function decodeReferenceProfile(bytes: Uint8Array, key: ReferenceProfileKey): ReferenceProfile {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== REFERENCE_PROFILE_MAGIC)
    throw new ReferenceProfileError('not a Sluice reference profile');
  const len = buf.readUInt32LE(8);
  if (12 + len > buf.length) throw new ReferenceProfileError('reference profile header is truncated');
  let json: unknown;
  try {
    json = JSON.parse(buf.toString('utf8', 12, 12 + len));
  } catch {
    throw new ReferenceProfileError('reference profile header is not JSON');
  }
  const header = checkHeader(json);
  if (header.dataSha256 !== key.dataSha256 || header.contractSha256 !== key.contractSha256)
    throw new ReferenceProfileError('reference profile was built from other data or another contract');
  const start = 12 + len + ((8 - ((12 + len) % 8)) % 8);
  const columns: Column[] = [];
  const profiles: ColumnProfile[] = [];
  const stats: ColumnStats[] = [];
  for (const c of header.columns) {
    if (c.type === 'category' || c.type === 'string') {
      columns.push({
        name: c.name,
        type: c.type,
        issues: c.issues,
        codes: new Int32Array(0),
        dictionary: c.dictionary ?? [],
      });
    } else if (c.type === 'boolean') {
      columns.push({ name: c.name, type: 'boolean', issues: c.issues, values: new Uint8Array(0) });
    } else columns.push({ name: c.name, type: c.type, issues: c.issues, values: new Float64Array(0) });
    const profile = c.profile as unknown as ColumnProfile;
    const s: ColumnStats = {};
    if (c.codeCounts) {
      const counts = Int32Array.from(c.codeCounts);
      s.codeCounts = counts;
      if (columns.at(-1)!.type === 'category' || columns.at(-1)!.type === 'string')
        attachCodeCounts(profile, counts);
    }
    if (c.booleanCounts) s.booleanCounts = c.booleanCounts;
    if (c.sorted) {
      const from = start + c.sorted.offset;
      const to = from + c.sorted.count * 8;
      if (to > buf.length) throw new ReferenceProfileError(`column "${c.name}": sample out of range`);
      // A view when 8-byte aligned (the bytes live as long as the validation that reads them), else a copy.
      s.sorted =
        (buf.byteOffset + from) % 8 === 0
          ? new Float64Array(buf.buffer, buf.byteOffset + from, c.sorted.count)
          : new Float64Array(buf.buffer.slice(buf.byteOffset + from, buf.byteOffset + to));
    }
    if (c.sampled !== undefined) s.sampled = c.sampled;
    profiles.push(profile);
    stats.push(s);
  }
  return {
    table: { rows: header.rows, columns },
    profile: { rows: header.rows, columns: profiles, stats },
    ...(header.info ? { info: header.info } : {}),
  };
}
