import { DemoUsageError, parseDemoArgs } from '../../../cli/demo';

describe('npm run demo: its options', () => {
  it('takes its documented options', () => {
    expect(parseDemoArgs(['--approve', '--training', 'examples/training/sklearn'])).toMatchObject({
      approve: true,
      training: 'examples/training/sklearn',
    });
  });

  it.each([
    [['--bogus'], "unknown option '--bogus'; see 'npm run demo -- --help'"],
    [['--training'], "option '--training' needs a value; see 'npm run demo -- --help'"],
    [['--approve=yes'], "option '--approve' takes no value; see 'npm run demo -- --help'"],
    [['wages'], "unexpected argument 'wages'; see 'npm run demo -- --help'"],
  ])('refuses %j with its own words, not the parser’s', (argv, message) => {
    let caught: unknown;
    try {
      parseDemoArgs(argv);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DemoUsageError);
    expect((caught as Error).message).toBe(message);
  });
});
