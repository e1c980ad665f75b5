/**
 * Issue 13: "an image sent as CSV is sniffed and parsed". Binary content is refused at ingestion
 * with the content named (415), and sniffBinary is what startRun checks an upload's first chunk with.
 */
import { gzipSync } from 'node:zlib';
import { sniffBinary } from '../../../lib/data/reading/input';
import { parse } from './helpers';

const bytes = (hex: string, text = '') => Buffer.concat([Buffer.from(hex, 'hex'), Buffer.from(text)]);

const binaries: [string, Buffer, string][] = [
  ['PNG', bytes('89504e470d0a1a0a0000000d49484452'), 'a PNG image'],
  ['JPEG', bytes('ffd8ffe000104a464946'), 'a JPEG image'],
  ['GIF', bytes('', 'GIF89a\u0001\u0000\u0001\u0000'), 'a GIF image'],
  ['PDF', bytes('', '%PDF-1.7\n1 0 obj\n'), 'a PDF document'],
  ['ZIP (xlsx)', bytes('504b0304140000000800'), 'a ZIP archive'],
];

describe('an image sent as CSV is refused by name (issue 13)', () => {
  it.each(binaries)('%s at ingestion: 415 INPUT_UNSUPPORTED_FORMAT naming it', async (_name, data, named) => {
    await expect(parse(data, { format: 'csv' })).rejects.toMatchObject({
      code: 'INPUT_UNSUPPORTED_FORMAT',
      status: 415,
      message: expect.stringContaining(named),
    });
  });

  it.each(binaries)('%s: sniffBinary names it', (_name, data, named) => {
    expect(sniffBinary(data)).toContain(named);
  });

  it('NUL bytes are binary data; UTF-16 is named as such', () => {
    expect(sniffBinary(Buffer.from('a,b\n1,\u00002\n'))).toBe('binary data (a NUL byte at byte 6)');
    expect(sniffBinary(Buffer.from('a,b\n1,2\n', 'utf16le'))).toContain('UTF-16');
  });

  it('text, gzip and Parquet are not binary content to refuse', () => {
    expect(sniffBinary(Buffer.from('gender,wage\nfemale,5.1\n'))).toBeUndefined();
    expect(sniffBinary(Buffer.from('{"a":1}\n'))).toBeUndefined();
    expect(sniffBinary(gzipSync('a,b\n1,2\n'))).toBeUndefined();
    expect(sniffBinary(Buffer.from('PAR1\u0000\u0000'))).toBeUndefined();
  });
});
