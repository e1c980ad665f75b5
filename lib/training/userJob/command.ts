import { NonRetriableError } from '../../errors';
import { SLUICE_VARIABLE_NAMES } from '../../contracts/job';
import type { SluiceVariable } from '../../contracts/job';

/**
 * A user job's command line → argv, without a shell. Rules (docs/training.md, "Quoting"):
 * - words are separated by spaces, tabs or newlines;
 * - `'…'` keeps everything inside literally (no placeholders, no escapes);
 * - `"…"` groups words; inside, `\"` and `\\` are a quote and a backslash, `${…}` is expanded;
 * - outside quotes a backslash makes the next character literal;
 * - `${SLUICE_NAME}` is replaced by the variable's value, inside the word it is in: a value with
 *   spaces stays one word, and nothing in a value is ever interpreted (no globbing, no `;`, `|`,
 *   `$(…)`, redirection). Any other `${…}` is an error; a `$` not followed by `{` is literal.
 * A quoted empty string (`''` or `""`) is an empty argument.
 */

type Piece<V extends string = SluiceVariable> = { text: string } | { variable: V };

/**
 * The words of a command with their placeholders still unexpanded. `known` are the variables the
 * command may name: a training job's (default), or a score command's (lib/contracts/job.ts).
 */
export function parseCommand<V extends string = SluiceVariable>(
  command: string,
  known: readonly V[] = SLUICE_VARIABLE_NAMES as readonly string[] as readonly V[],
): Piece<V>[][] {
  const words: Piece<V>[][] = [];
  let word: Piece<V>[] | undefined;
  const push = (p: Piece<V>) => {
    word ??= [];
    const last = word[word.length - 1];
    if ('text' in p && last && 'text' in last) last.text += p.text;
    else word.push(p);
  };
  const end = () => {
    if (word) words.push(word);
    word = undefined;
  };
  const placeholder = (at: number): number => {
    const close = command.indexOf('}', at + 2);
    if (close < 0)
      throw new NonRetriableError('bad_command', `unclosed \${ at character ${at + 1} of the command`);
    const name = command.slice(at + 2, close);
    if (!(known as readonly string[]).includes(name))
      throw new NonRetriableError(
        'unknown_placeholder',
        `\${${name}} in the command is not a sluice.job/v1 variable (known: ${known.join(', ')})`,
      );
    push({ variable: name as V });
    return close;
  };
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      end();
    } else if (c === "'") {
      const close = command.indexOf("'", i + 1);
      if (close < 0)
        throw new NonRetriableError('bad_command', `unclosed ' at character ${i + 1} of the command`);
      push({ text: command.slice(i + 1, close) });
      i = close;
    } else if (c === '"') {
      const start = i;
      push({ text: '' });
      for (i++; ; i++) {
        if (i >= command.length)
          throw new NonRetriableError('bad_command', `unclosed " at character ${start + 1} of the command`);
        const d = command[i]!;
        if (d === '"') break;
        if (d === '\\' && (command[i + 1] === '"' || command[i + 1] === '\\')) {
          push({ text: command[++i]! });
        } else if (d === '$' && command[i + 1] === '{') {
          i = placeholder(i);
        } else push({ text: d });
      }
    } else if (c === '\\') {
      if (i + 1 >= command.length)
        throw new NonRetriableError('bad_command', 'the command ends with a lone backslash');
      push({ text: command[++i]! });
    } else if (c === '$' && command[i + 1] === '{') {
      i = placeholder(i);
    } else push({ text: c });
  }
  end();
  if (words.length === 0) throw new NonRetriableError('bad_command', 'the command is empty');
  return words;
}

/** The command as argv, placeholders replaced by `values` (every variable used must have one). */
export function commandArgv(
  command: string,
  values: Partial<Record<string, string>>,
  known: readonly string[] = SLUICE_VARIABLE_NAMES,
): string[] {
  return parseCommand<string>(command, known).map((word) =>
    word
      .map((p) => {
        if ('text' in p) return p.text;
        const v = values[p.variable];
        if (v === undefined)
          throw new NonRetriableError('unknown_placeholder', `\${${p.variable}} has no value for this job`);
        return v;
      })
      .join(''),
  );
}
