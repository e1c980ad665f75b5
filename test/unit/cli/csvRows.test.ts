import { readFileSync } from 'node:fs';
import path from 'node:path';
import { csvRows } from '../../../cli/sluice';

describe('sluice predict: CSV rows to JSON', () => {
  it('reads numbers as numbers, empty cells as null, and quoted fields whole', () => {
    const text = 'education,gender,wage,note\r\n12,male,9.5,"says ""hi"", twice"\n16,female,,\n\n';
    expect(csvRows(text)).toEqual([
      { education: 12, gender: 'male', wage: 9.5, note: 'says "hi", twice' },
      { education: 16, gender: 'female', wage: null, note: null },
    ]);
  });

  it('reads the shipped wages data: 534 rows with their types', () => {
    const rows = csvRows(
      readFileSync(path.join(__dirname, '..', '..', '..', 'data', 'cps-wages-1985.csv'), 'utf8'),
    );
    expect(rows).toHaveLength(534);
    expect(rows[0]).toEqual({
      education: 8,
      south: 0,
      gender: 'female',
      experience: 21,
      union: 1,
      wage: 5.1,
      age: 35,
      race: 'hispanic',
      occupation: 'other',
      sector: 'manufacturing',
      married: 0,
    });
  });
});
