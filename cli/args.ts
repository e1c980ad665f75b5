/**
 * The CLI's own words for node:util parseArgs errors, shared by `sluice` and `npm run demo`: the
 * raw parser's text ("Unknown option '--bogus'. To specify a positional argument starting with a
 * '-', place it at the end of the command after '--', as in '-- \"--bogus\"") is for programmers,
 * not for someone who mistyped an option.
 */
export function parseErrorMessage(err: unknown, help: string, command?: string): string {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const option = /'(-[^' ]+)/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
    return `unknown option '${option}'${command ? ` for '${command}'` : ''}; see '${help}'`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
    return `option '${option}' ${/argument missing/.test(message) ? 'needs a value' : 'takes no value'}; see '${help}'`;
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /'([^']*)'/.exec(message)?.[1];
    return `unexpected argument${arg ? ` '${arg}'` : ''}; see '${help}'`;
  }
  return `${message}; see '${help}'`;
}
