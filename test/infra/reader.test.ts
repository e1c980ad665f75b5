// The Bicep reader the infra tests rely on: it must accept what Bicep accepts in our templates and
// reject the mistakes a compiler would catch first (unbalanced brackets, broken strings).
import {
  BicepSyntaxError,
  EvalError,
  Evaluator,
  parseBicep,
  propAt,
  literal,
  tokenize,
  declNamed,
} from './bicep';

function syntaxError(src: string): BicepSyntaxError {
  try {
    parseBicep(src);
  } catch (e) {
    if (e instanceof BicepSyntaxError) return e;
    throw e;
  }
  throw new Error('expected a syntax error');
}

describe('Bicep reader: lexing', () => {
  it('decodes escapes and keeps interpolations as tokens, including nested strings', () => {
    const [str] = tokenize("'it\\'s ${a ? 'x}' : b}\\${literal} \\u{41}'");
    expect(str?.kind).toBe('string');
    expect(str?.fragments).toEqual(["it's ", '${literal} A']);
    expect(str?.interpolations?.[0]?.map((t) => t.text)).toEqual(['a', '?', "'x}'", ':', 'b']);
  });

  it('skips line and block comments but keeps line breaks', () => {
    const tokens = tokenize('a // comment {\n/* { [ */ b');
    expect(tokens.map((t) => t.kind)).toEqual(['ident', 'newline', 'ident']);
  });

  it.each([
    ['an unclosed brace', 'var x = {\n  a: 1\n', /\{ is never closed/],
    ['a mismatched bracket', 'var x = [\n  1\n}', /\} closes \[ opened at 1:9/],
    ['an extra closer', 'var x = 1)', /unmatched \)/],
    ['an unterminated string', "var x = 'abc\nvar y = 1", /unterminated string/],
    ['a bad escape', "var x = 'a\\qb'", /bad escape \\q/],
    ['a line break in an interpolation', "var x = '${a\n}'", /unterminated string|line break/],
    ['an unterminated block comment', 'var x = 1 /* never closed', /unterminated \/\* comment/],
    ['an unknown character', 'var x = 1 # 2', /unexpected character "#"/],
  ])('rejects %s with its position', (_what, src, message) => {
    const err = syntaxError(src);
    expect(err.message).toMatch(message);
    expect(err.line).toBeGreaterThan(0);
  });
});

describe('Bicep reader: parsing', () => {
  const src = [
    "targetScope = 'subscription'",
    '',
    "@description('Name.')",
    '@minLength(1)',
    'param name string',
    '',
    '@allowed([',
    "  'a'",
    "  'b'",
    '])',
    "param slot string = 'a'",
    '',
    "resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = if (slot == 'a') {",
    '  name: name',
    '}',
    '',
    "module m 'modules/x.bicep' = [",
    '  for (item, i) in [1, 2]: {',
    "    name: 'm${i}'",
    '    params: {',
    "      'quoted-key': union({ a: 1 }, {",
    '        b: 2',
    '      })',
    "      cond: slot == 'a'",
    "        ? 'yes'",
    "        : 'no'",
    '    }',
    '  }',
    ']',
    '',
    'output NAME string = name',
  ].join('\n');

  it('reads declarations, decorators and literals', () => {
    const file = parseBicep(src);
    expect(file.decls.map((d) => `${d.kind}:${d.name}`)).toEqual([
      'targetScope:targetScope',
      'param:name',
      'param:slot',
      'resource:st',
      'module:m',
      'output:NAME',
    ]);
    const name = declNamed(file, 'param', 'name');
    expect(name.typeText).toBe('string');
    expect(name.value).toBeUndefined();
    expect(name.decorators.map((d) => d.name)).toEqual(['description', 'minLength']);
    const st = declNamed(file, 'resource', 'st');
    expect(st.existing).toBe(true);
    expect(st.target).toBe('Microsoft.Storage/storageAccounts@2023-05-01');
    expect(st.value?.kind).toBe('if');
    const m = declNamed(file, 'module', 'm');
    expect(m.value?.kind).toBe('for');
    expect(propAt(m.value, 'params.quoted-key')?.kind).toBe('expr');
    expect(propAt(m.value, 'params.cond')?.kind).toBe('expr');
    expect(literal(propAt(m.value, 'name'))).toBeUndefined();
  });

  it('rejects a property without a colon and two operands without an operator', () => {
    expect(syntaxError('var x = {\n  a 1\n}').message).toMatch(/expected :/);
    expect(syntaxError("var x = 'a' 'b'").message).toMatch(/missing operator before "'b'"/);
    expect(syntaxError('param\n').message).toMatch(/expected a name/);
  });
});

describe('Bicep reader: evaluation', () => {
  const file = parseBicep(
    [
      'param env string',
      'param on bool = false',
      "var json = { a: { b: 'deep' }, list: ['x', 'y'] }",
      "var name = toLower('ST-${env}-${json.a.b}')",
      "var upper = map(items({ k2: 2, k1: 1 }), e => '${e.key}=${e.value}')",
      "var pick = on ? { x: 'on' } : {}",
      "var merged = union({ a: 1 }, pick, { '${env}': json.list[1] })",
      'var missing = json.nope',
      'var call = nosuch(1)',
      'var deployed = st.properties.primaryEndpoints.blob',
      "resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {",
      "  name: 'x'",
      '}',
    ].join('\n'),
  );

  it('evaluates names, lambdas, union and conditional objects', () => {
    const ev = new Evaluator(file, { env: 'Dev' });
    expect(ev.variable('name')).toBe('st-dev-deep');
    expect(ev.variable('upper')).toEqual(['k1=1', 'k2=2']);
    expect(ev.variable('merged')).toEqual({ a: 1, Dev: 'y' });
    expect(new Evaluator(file, { env: 'x', on: true }).variable('merged')).toEqual({ a: 1, x: 'y' });
  });

  it('fails on a missing JSON member or an unknown function, and marks deployment-time values', () => {
    const ev = new Evaluator(file, { env: 'Dev' });
    expect(() => ev.variable('missing')).toThrow(EvalError);
    expect(() => ev.variable('call')).toThrow(/unknown function nosuch/);
    expect(String(ev.variable('deployed'))).toBe('<st.properties.primaryEndpoints.blob>');
  });
});
