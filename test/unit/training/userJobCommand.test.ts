import { commandArgv, parseCommand } from '../../../lib/training/userJob/command';
import { SluiceError } from '../../../lib/errors';

const values = {
  SLUICE_TRAIN: '/data/my train.csv',
  SLUICE_OUTPUT: '/out',
  SLUICE_HYPERPARAMETERS: '{"C": 1, "note": "a;b $(rm -rf /) `x` \'q\'"}',
};

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof SluiceError) return `${err.code}: ${err.message}`;
    throw err;
  }
  throw new Error('expected an error');
}

describe('user job command → argv (no shell)', () => {
  it('splits words on spaces, tabs and newlines, dropping runs of them', () => {
    expect(commandArgv('  python3\ttrain.py \n --epochs  3 ', values)).toEqual([
      'python3',
      'train.py',
      '--epochs',
      '3',
    ]);
  });

  it('replaces placeholders inside their word; a value with spaces stays one argument', () => {
    expect(commandArgv('python3 train.py --train=${SLUICE_TRAIN} ${SLUICE_OUTPUT}/model', values)).toEqual([
      'python3',
      'train.py',
      '--train=/data/my train.csv',
      '/out/model',
    ]);
  });

  it('never interprets a value: shell syntax in hyperparameters arrives verbatim as one argument', () => {
    expect(commandArgv('run ${SLUICE_HYPERPARAMETERS}', values)).toEqual([
      'run',
      values.SLUICE_HYPERPARAMETERS,
    ]);
  });

  it('keeps single-quoted text literal, placeholders and backslashes included', () => {
    expect(commandArgv("echo '${SLUICE_TRAIN} a\\b' x", values)).toEqual([
      'echo',
      '${SLUICE_TRAIN} a\\b',
      'x',
    ]);
  });

  it('groups double-quoted text, expands placeholders in it, and unescapes \\" and \\\\ only', () => {
    expect(commandArgv('echo "a  b ${SLUICE_OUTPUT} \\"q\\" \\\\ \\n"', values)).toEqual([
      'echo',
      'a  b /out "q" \\ \\n',
    ]);
  });

  it('joins adjacent quoted and unquoted parts into one word', () => {
    expect(commandArgv(`a"b c"'d e'f`, values)).toEqual(['ab cd ef']);
  });

  it('makes a quoted empty string an empty argument', () => {
    expect(commandArgv(`prog '' ""`, values)).toEqual(['prog', '', '']);
  });

  it('takes a backslash outside quotes as making the next character literal', () => {
    expect(commandArgv('echo a\\ b \\$x \\${SLUICE_TRAIN}', values)).toEqual([
      'echo',
      'a b',
      '$x',
      '${SLUICE_TRAIN}',
    ]);
  });

  it('leaves a $ that does not open ${ as it is (no environment expansion)', () => {
    expect(commandArgv('echo $HOME $ a$b', values)).toEqual(['echo', '$HOME', '$', 'a$b']);
  });

  it('refuses a placeholder that is not a contract variable, naming it', () => {
    expect(codeOf(() => parseCommand('python3 ${HOME}/train.py'))).toMatch(
      /^unknown_placeholder: \$\{HOME\} in the command is not a sluice.job\/v1 variable/,
    );
  });

  it('refuses a contract variable that has no value for the job', () => {
    expect(codeOf(() => commandArgv('x ${SLUICE_SEED}', values))).toBe(
      'unknown_placeholder: ${SLUICE_SEED} has no value for this job',
    );
  });

  it.each([
    ['python3 "train.py', 'bad_command: unclosed " at character 9 of the command'],
    ["python3 'train.py", "bad_command: unclosed ' at character 9 of the command"],
    ['python3 ${SLUICE_TRAIN', 'bad_command: unclosed ${ at character 9 of the command'],
    ['python3 \\', 'bad_command: the command ends with a lone backslash'],
    ['   ', 'bad_command: the command is empty'],
  ])('refuses %j with a named error', (command, expected) => {
    expect(codeOf(() => parseCommand(command))).toBe(expected);
  });
});
