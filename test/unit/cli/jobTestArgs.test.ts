import { CliError, jobTestArgs, main } from '../../../cli/sluice';

const need = (v: string | undefined, what: string): string => {
  if (!v) throw new CliError(`missing ${what}`);
  return v;
};

function message(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('sluice job test options', () => {
  it('turns the options into the job test arguments', () => {
    expect(
      jobTestArgs(
        'jobs/sk',
        {
          data: 'd.csv',
          target: 'y',
          features: ' a, b ,,c',
          command: 'python3 train.py',
          rows: '500',
          task: 'regression',
          seed: '7',
          hyperparameters: '{"alpha": 2}',
          'time-limit': '90',
          work: '/tmp/w',
        },
        need,
      ),
    ).toEqual({
      folder: 'jobs/sk',
      data: 'd.csv',
      target: 'y',
      features: ['a', 'b', 'c'],
      command: 'python3 train.py',
      rows: 500,
      task: 'regression',
      seed: 7,
      hyperparameters: { alpha: 2 },
      timeLimitSeconds: 90,
      work: '/tmp/w',
    });
  });

  it('leaves out what was not given, so job.json and the defaults apply', () => {
    expect(jobTestArgs('f', { data: 'd.csv', target: 'y', json: false }, need)).toEqual({
      folder: 'f',
      data: 'd.csv',
      target: 'y',
      features: undefined,
      command: undefined,
      rows: undefined,
      task: undefined,
      seed: undefined,
      hyperparameters: undefined,
      timeLimitSeconds: undefined,
      work: undefined,
    });
  });

  it.each([
    [{ target: 'y' }, 'missing --data FILE'],
    [{ data: 'd.csv' }, 'missing --target COL'],
    [{ data: 'd', target: 'y', rows: '5' }, '--rows must be an integer of at least 10, not 5'],
    [
      { data: 'd', target: 'y', 'time-limit': '1.5' },
      '--time-limit must be an integer of at least 1, not 1.5',
    ],
    [{ data: 'd', target: 'y', task: 'ranking' }, '--task must be classification or regression, not ranking'],
    [{ data: 'd', target: 'y', hyperparameters: '[1]' }, '--hyperparameters must be a JSON object'],
    [
      { data: 'd', target: 'y', hyperparameters: '{C: 1}' },
      expect.stringMatching(/^--hyperparameters is not JSON/),
    ],
  ])('refuses %j naming the option', (values, expected) => {
    expect(message(() => jobTestArgs('f', values, need))).toEqual(expected);
  });

  it('lists job test in the usage and refuses an unknown job command', async () => {
    const lines: string[] = [];
    await main(['--help'], (l) => lines.push(l));
    expect(lines.join('\n')).toMatch(/job test FOLDER --data FILE --target COL/);
    await expect(main(['job', 'run', 'f'], () => undefined)).rejects.toThrow(/unknown job command 'run'/);
  });
});
