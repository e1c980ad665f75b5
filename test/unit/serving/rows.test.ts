/**
 * Issue 13: "predict accepts a bare array, numbers for categorical features and unseen categories
 * without a word". The row validator the scoring endpoint compiles per model.
 */
import type { RowWarning } from '../../../lib/serving/rows';
import { compileRowValidator } from '../../../lib/serving/rows';

const validate = compileRowValidator([
  { name: 'size', type: 'numeric' },
  { name: 'color', type: 'categorical', categories: ['red', 'blue'] },
]);

describe('predict rows (issue 13 load and bad input)', () => {
  it('refuses a bare array, naming the {"rows": [...]} shape', () => {
    expect(() => validate([{ size: 1, color: 'red' }])).toThrow(
      expect.objectContaining({ field: '(body)', message: expect.stringContaining('{"rows"') }),
    );
  });

  it.each([1, true])('refuses %p for a categorical feature, naming the row and field', (value) => {
    expect(() =>
      validate({
        rows: [
          { size: 1, color: 'red' },
          { size: 1, color: value },
        ],
      }),
    ).toThrow(expect.objectContaining({ field: 'rows[1].color', status: 400 }));
  });

  it('warns about each unseen category on its row, and none for known or missing ones', () => {
    const warnings: RowWarning[] = [];
    const rows = validate(
      {
        rows: [
          { size: 1, color: 'red' },
          { size: 2, color: 'green' },
          { size: 3, color: null },
        ],
      },
      warnings,
    );
    expect(rows).toHaveLength(3);
    expect(warnings).toEqual([
      { row: 1, field: 'color', code: 'unseen_category', message: expect.stringContaining('"green"') },
    ]);
  });
});
