import { RestError } from '@azure/storage-blob';
import { NonRetriableError, TransientError } from '../../lib/errors';
import { ConflictError, mapStorageError } from '../../lib/storage';

// Error shapes as the SDKs throw them: RestError (Storage, Tables) carries statusCode; the Cosmos
// ErrorResponse carries the status as a numeric `code`; socket failures carry a string `code`.
const rest = (statusCode: number) => new RestError(`status ${statusCode}\nRequestId:1`, { statusCode });
const cosmos = (code: number) => Object.assign(new Error(`cosmos ${code}`), { code });

describe('mapStorageError', () => {
  it.each([
    [429, 'THROTTLED'],
    [408, 'UNAVAILABLE'],
    [410, 'UNAVAILABLE'],
    [449, 'UNAVAILABLE'],
    [500, 'UNAVAILABLE'],
    [503, 'UNAVAILABLE'],
  ])('HTTP %i is transient (%s)', (status, kind) => {
    for (const err of [rest(status), cosmos(status)]) {
      const mapped = mapStorageError(err, 'cosmos', 'read runs/1');
      expect(mapped).toBeInstanceOf(TransientError);
      expect(mapped).toMatchObject({ code: `COSMOS_${kind}`, cause: err });
    }
  });

  it.each([
    [400, 'REJECTED'],
    [401, 'FORBIDDEN'],
    [403, 'FORBIDDEN'],
    [404, 'NOT_FOUND'],
    [409, 'CONFLICT'],
    [412, 'PRECONDITION_FAILED'],
    [413, 'TOO_LARGE'],
  ])('HTTP %i is not retriable (%s)', (status, kind) => {
    const mapped = mapStorageError(rest(status), 'blob', 'write datasets/x');
    expect(mapped).toBeInstanceOf(NonRetriableError);
    expect(mapped.name).toBe('NonRetriableError');
    expect(mapped).toMatchObject({ code: `BLOB_${kind}` });
    expect(mapped.message).toBe(`blob write datasets/x failed with HTTP ${status}: status ${status}`);
  });

  it('treats socket failures and aborts as transient', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(mapStorageError(refused, 'table', 'list')).toMatchObject({
      name: 'TransientError',
      code: 'TABLE_UNAVAILABLE',
    });
    const wrapped = new Error('request failed', {
      cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }),
    });
    expect(mapStorageError(wrapped, 'blob', 'read')).toMatchObject({ code: 'BLOB_UNAVAILABLE' });
    const aborted = Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' });
    expect(mapStorageError(aborted, 'cosmos', 'read')).toMatchObject({
      name: 'TransientError',
      code: 'COSMOS_TIMEOUT',
    });
  });

  it('keeps errors that already carry retry semantics', () => {
    const conflict = new ConflictError('COSMOS_CONFLICT', 'exists');
    expect(mapStorageError(conflict, 'cosmos', 'create')).toBe(conflict);
    expect(conflict).toBeInstanceOf(NonRetriableError);
    expect(conflict.name).toBe('ConflictError');
  });
});
