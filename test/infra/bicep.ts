/**
 * A small structural reader for the Bicep in infra/, for tests that run without the Bicep
 * compiler. It lexes (strings with escapes and `${}` interpolation, comments, operators), checks
 * that brackets balance, parses declarations and object/array/for/if literals, and evaluates the
 * subset of expressions the templates use for names and app settings (parameters, variables,
 * member access into loadJsonContent files, string functions, map/items/union, ternaries).
 * Values only known at deployment time (module outputs, resource properties) evaluate to
 * {@link Unknown} markers that carry their source text.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export class BicepSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(`${line}:${col}: ${message}`);
    this.name = 'BicepSyntaxError';
  }
}

export interface Token {
  kind: 'ident' | 'number' | 'string' | 'punct' | 'newline';
  text: string;
  start: number;
  end: number;
  line: number;
  col: number;
  /** Strings: literal fragments between interpolations (one more than `interpolations`). */
  fragments?: string[];
  /** Strings: the tokens of each `${...}` expression. */
  interpolations?: Token[][];
}

const MULTI_PUNCT = ['=>', '==', '!=', '<=', '>=', '&&', '||', '??', '.?', '::', '=~', '!~'];
const SINGLE_PUNCT = '{}[](),:?.=!<>+-*/%@|';
const ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", n: '\n', r: '\r', t: '\t', $: '$' };

class Lexer {
  private readonly lineStarts: number[] = [0];

  constructor(readonly src: string) {
    for (let i = 0; i < src.length; i++) if (src[i] === '\n') this.lineStarts.push(i + 1);
  }

  position(offset: number): { line: number; col: number } {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.lineStarts[lo]! + 1 };
  }

  error(message: string, offset: number): never {
    const { line, col } = this.position(offset);
    throw new BicepSyntaxError(message, line, col);
  }

  private token(kind: Token['kind'], start: number, end: number, extra: Partial<Token> = {}): Token {
    return { kind, text: this.src.slice(start, end), start, end, ...this.position(start), ...extra };
  }

  /**
   * Lexes from `pos`. Inside an interpolation (`inInterpolation`) it stops at the `}` that closes
   * it and refuses line breaks, as a single-line string cannot contain one.
   */
  lex(pos: number, inInterpolation: boolean): { tokens: Token[]; end: number } {
    const src = this.src;
    const tokens: Token[] = [];
    let depth = 0;
    let i = pos;
    while (i < src.length) {
      const c = src[i]!;
      if (c === ' ' || c === '\t' || c === '\r') {
        i++;
      } else if (c === '\n') {
        if (inInterpolation) this.error('line break inside a string interpolation', i);
        tokens.push(this.token('newline', i, i + 1));
        i++;
      } else if (src.startsWith('//', i)) {
        while (i < src.length && src[i] !== '\n') i++;
      } else if (src.startsWith('/*', i)) {
        const close = src.indexOf('*/', i + 2);
        if (close < 0) this.error('unterminated /* comment', i);
        i = close + 2;
      } else if (src.startsWith("'''", i)) {
        const close = src.indexOf("'''", i + 3);
        if (close < 0) this.error("unterminated ''' string", i);
        tokens.push(
          this.token('string', i, close + 3, { fragments: [src.slice(i + 3, close)], interpolations: [] }),
        );
        i = close + 3;
      } else if (c === "'") {
        const str = this.string(i);
        tokens.push(str);
        i = str.end;
      } else if (/[0-9]/.test(c)) {
        let j = i;
        while (j < src.length && /[0-9]/.test(src[j]!)) j++;
        tokens.push(this.token('number', i, j));
        i = j;
      } else if (/[A-Za-z_]/.test(c)) {
        let j = i;
        while (j < src.length && /[A-Za-z0-9_]/.test(src[j]!)) j++;
        tokens.push(this.token('ident', i, j));
        i = j;
      } else {
        const multi = MULTI_PUNCT.find((p) => src.startsWith(p, i));
        const text = multi ?? (SINGLE_PUNCT.includes(c) ? c : undefined);
        if (!text) this.error(`unexpected character ${JSON.stringify(c)}`, i);
        if (inInterpolation && text === '{') depth++;
        if (inInterpolation && text === '}') {
          if (depth === 0) return { tokens, end: i };
          depth--;
        }
        tokens.push(this.token('punct', i, i + text.length));
        i += text.length;
      }
    }
    if (inInterpolation) this.error('unterminated ${ interpolation', pos);
    return { tokens, end: i };
  }

  private string(start: number): Token {
    const src = this.src;
    const fragments: string[] = [];
    const interpolations: Token[][] = [];
    let current = '';
    let i = start + 1;
    for (;;) {
      if (i >= src.length || src[i] === '\n') this.error('unterminated string', start);
      const c = src[i]!;
      if (c === "'") break;
      if (c === '\\') {
        const next = src[i + 1] ?? '';
        if (next === 'u' && src[i + 2] === '{') {
          const close = src.indexOf('}', i + 3);
          const hex = close < 0 ? '' : src.slice(i + 3, close);
          if (!/^[0-9A-Fa-f]{1,6}$/.test(hex)) this.error('bad \\u{...} escape', i);
          current += String.fromCodePoint(parseInt(hex, 16));
          i = close + 1;
          continue;
        }
        const escaped = ESCAPES[next];
        if (escaped === undefined) this.error(`bad escape \\${next}`, i);
        current += escaped;
        i += 2;
      } else if (c === '$' && src[i + 1] === '{') {
        const inner = this.lex(i + 2, true);
        if (inner.tokens.length === 0) this.error('empty ${} interpolation', i);
        fragments.push(current);
        current = '';
        interpolations.push(inner.tokens);
        i = inner.end + 1;
      } else {
        current += c;
        i++;
      }
    }
    fragments.push(current);
    return this.token('string', start, i + 1, { fragments, interpolations });
  }
}

/** Tokens of a whole file; throws {@link BicepSyntaxError} on a lexical error or unbalanced bracket. */
export function tokenize(src: string): Token[] {
  const lexer = new Lexer(src);
  const { tokens } = lexer.lex(0, false);
  checkBalanced(tokens, lexer);
  return tokens;
}

const PAIRS: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

function checkBalanced(tokens: Token[], lexer: Lexer): void {
  const stack: Token[] = [];
  const visit = (list: Token[]) => {
    for (const t of list) {
      if (t.kind === 'string') t.interpolations?.forEach(visit);
      if (t.kind !== 'punct') continue;
      if (PAIRS[t.text]) stack.push(t);
      else if (t.text === ')' || t.text === ']' || t.text === '}') {
        const open = stack.pop();
        if (!open) lexer.error(`unmatched ${t.text}`, t.start);
        if (PAIRS[open.text] !== t.text)
          lexer.error(`${t.text} closes ${open.text} opened at ${open.line}:${open.col}`, t.start);
      }
    }
  };
  visit(tokens);
  const open = stack.pop();
  if (open) lexer.error(`${open.text} is never closed`, open.start);
}

// ---------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------

export type Node = ObjectNode | ArrayNode | ForNode | IfNode | ExprNode;

export interface ObjectNode {
  kind: 'object';
  props: Prop[];
  line: number;
}
export interface Prop {
  /** The key as written: an identifier, a string value, or the raw text of an interpolated key. */
  key: string;
  keyToken: Token;
  value: Node;
  decorators: Decorator[];
}
export interface ArrayNode {
  kind: 'array';
  items: Node[];
  line: number;
}
export interface ForNode {
  kind: 'for';
  header: Token[];
  /** Loop variables, e.g. `container` or `container`, `index`. */
  variables: string[];
  body: Node;
  line: number;
}
export interface IfNode {
  kind: 'if';
  condition: ExprNode;
  body: Node;
  line: number;
}
/** An expression: tokens, with nested object and array literals as nodes. */
export interface ExprNode {
  kind: 'expr';
  parts: (Token | Node)[];
  text: string;
  line: number;
}

export interface Decorator {
  name: string;
  args: Node[];
}

export interface Decl {
  kind:
    | 'targetScope'
    | 'param'
    | 'var'
    | 'resource'
    | 'module'
    | 'output'
    | 'type'
    | 'import'
    | 'metadata'
    | 'func';
  name: string;
  decorators: Decorator[];
  /** Declared type of a param or output, as text (`string`, `bool`, `string[]`, `'a' | 'b'`). */
  typeText?: string;
  /** Resource type (`Microsoft.X/y@version`) or module path. */
  target?: string;
  existing?: boolean;
  /** Default value of a param, or the value / body of anything else. */
  value?: Node;
  line: number;
}

export interface BicepFile {
  path: string;
  source: string;
  tokens: Token[];
  decls: Decl[];
}

const isPunct = (t: Token | undefined, text: string) => t?.kind === 'punct' && t.text === text;
const isIdent = (t: Token | undefined, text?: string) =>
  t?.kind === 'ident' && (text === undefined || t.text === text);
const CONTINUATIONS = new Set(['?', ':', '&&', '||', '??', '.', '.?']);

class Parser {
  private p = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly src: string,
  ) {}

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.p + offset];
  }

  private next(): Token {
    const t = this.tokens[this.p++];
    if (!t) this.fail('unexpected end of file', this.tokens[this.tokens.length - 1]);
    return t;
  }

  private fail(message: string, at: Token | undefined): never {
    throw new BicepSyntaxError(message, at?.line ?? 0, at?.col ?? 0);
  }

  private expectPunct(text: string): Token {
    const t = this.next();
    if (!isPunct(t, text)) this.fail(`expected ${text} but found ${JSON.stringify(t.text)}`, t);
    return t;
  }

  private expectIdent(): Token {
    const t = this.next();
    if (t.kind !== 'ident') this.fail(`expected a name but found ${JSON.stringify(t.text)}`, t);
    return t;
  }

  private skipNewlines(): void {
    while (this.peek()?.kind === 'newline') this.p++;
  }

  private endOfStatement(): void {
    const t = this.peek();
    if (t && t.kind !== 'newline') this.fail(`unexpected ${JSON.stringify(t.text)} after the declaration`, t);
  }

  file(): Decl[] {
    const decls: Decl[] = [];
    for (;;) {
      this.skipNewlines();
      if (!this.peek()) return decls;
      decls.push(this.declaration());
      this.endOfStatement();
    }
  }

  private decorators(): Decorator[] {
    const list: Decorator[] = [];
    while (isPunct(this.peek(), '@')) {
      this.p++;
      let name = this.expectIdent().text;
      // Namespaced decorators such as @sys.description(...).
      while (isPunct(this.peek(), '.')) {
        this.p++;
        name = this.expectIdent().text;
      }
      const args: Node[] = [];
      if (isPunct(this.peek(), '(')) {
        this.p++;
        while (!isPunct(this.peek(), ')')) {
          this.skipNewlines();
          if (isPunct(this.peek(), ')')) break;
          args.push(this.value(new Set([',', ')'])));
          this.skipNewlines();
          if (isPunct(this.peek(), ',')) this.p++;
        }
        this.expectPunct(')');
      }
      list.push({ name, args });
      this.skipNewlines();
    }
    return list;
  }

  private declaration(): Decl {
    const decorators = this.decorators();
    const keyword = this.expectIdent();
    const line = keyword.line;
    switch (keyword.text) {
      case 'targetScope': {
        this.expectPunct('=');
        return { kind: 'targetScope', name: 'targetScope', decorators, value: this.value(new Set()), line };
      }
      case 'param':
      case 'output': {
        const name = this.expectIdent().text;
        const typeText = this.typeUntil(keyword.text === 'output');
        let value: Node | undefined;
        if (isPunct(this.peek(), '=')) {
          this.p++;
          value = this.value(new Set());
        } else if (keyword.text === 'output') {
          this.fail(`output ${name} has no value`, keyword);
        }
        return { kind: keyword.text, name, decorators, typeText, value, line };
      }
      case 'var':
      case 'metadata':
      case 'type': {
        const name = this.expectIdent().text;
        this.expectPunct('=');
        return { kind: keyword.text, name, decorators, value: this.value(new Set()), line };
      }
      case 'resource':
      case 'module': {
        const name = this.expectIdent().text;
        const targetToken = this.next();
        if (targetToken.kind !== 'string' || targetToken.interpolations?.length)
          this.fail(`${keyword.text} ${name} needs a literal type or path`, targetToken);
        let existing = false;
        if (isIdent(this.peek(), 'existing')) {
          this.p++;
          existing = true;
        }
        this.expectPunct('=');
        const value = this.value(new Set());
        const target = targetToken.fragments![0]!;
        return { kind: keyword.text, name, decorators, target, existing, value, line };
      }
      case 'import':
      case 'func': {
        const name = this.peek()?.text ?? '';
        let depth = 0;
        while (this.peek() && !(depth === 0 && this.peek()!.kind === 'newline')) {
          const t = this.next();
          if (t.kind === 'punct' && PAIRS[t.text]) depth++;
          if (t.kind === 'punct' && (t.text === ')' || t.text === ']' || t.text === '}')) depth--;
        }
        return { kind: keyword.text, name, decorators, line };
      }
      default:
        this.fail(`unknown declaration ${JSON.stringify(keyword.text)}`, keyword);
    }
  }

  /** A type: everything up to `=` (or the end of the line for a param without a default). */
  private typeUntil(needsValue: boolean): string {
    const start = this.peek();
    let depth = 0;
    let last: Token | undefined;
    while (this.peek()) {
      const t = this.peek()!;
      if (depth === 0 && (isPunct(t, '=') || (t.kind === 'newline' && !needsValue))) break;
      if (t.kind === 'punct' && PAIRS[t.text]) depth++;
      if (t.kind === 'punct' && (t.text === ')' || t.text === ']' || t.text === '}')) depth--;
      last = t;
      this.p++;
    }
    if (!start || !last) this.fail('missing type', start);
    return this.src.slice(start.start, last.end).replace(/\s+/g, ' ').trim();
  }

  /** A value up to a terminator at bracket depth 0 (or the end of the line). */
  value(terminators: Set<string>): Node {
    const t = this.peek();
    if (isIdent(t, 'if') && isPunct(this.peek(1), '(')) {
      this.p += 2;
      const condition = this.expr(new Set([')']));
      this.expectPunct(')');
      const body = this.value(terminators);
      return { kind: 'if', condition, body, line: t!.line };
    }
    const expr = this.expr(terminators);
    const only = expr.parts[0];
    if (expr.parts.length === 1 && only && !isTokenKind(only)) return only;
    return expr;
  }

  private expr(terminators: Set<string>): ExprNode {
    const parts: (Token | Node)[] = [];
    const first = this.peek();
    if (!first || first.kind === 'newline') this.fail('expected a value', first);
    let depth = 0;
    let startOffset = first.start;
    let endOffset = first.start;
    // Two operands in a row (`'a' 'b'`) is a syntax error; an array right after one is an index.
    let afterOperand = false;
    const operand = (at: Token, isIndex = false) => {
      if (afterOperand && !isIndex) this.fail(`missing operator before ${JSON.stringify(at.text)}`, at);
      afterOperand = true;
    };
    for (;;) {
      const t = this.peek();
      if (!t) break;
      if (t.kind === 'newline') {
        if (depth > 0) {
          this.p++;
          continue;
        }
        // A line that starts with ? : && || ?? or . continues the expression.
        let k = 0;
        while (this.peek(k)?.kind === 'newline') k++;
        const after = this.peek(k);
        if (after?.kind === 'punct' && CONTINUATIONS.has(after.text) && !terminators.has(after.text)) {
          this.p += k;
          continue;
        }
        break;
      }
      if (t.kind === 'punct') {
        if (depth === 0 && terminators.has(t.text)) break;
        if (t.text === '{') {
          operand(t);
          const obj = this.object();
          parts.push(obj);
          endOffset = this.tokens[this.p - 1]!.end;
          continue;
        }
        if (t.text === '[') {
          operand(t, true);
          const arr = this.array();
          parts.push(arr);
          endOffset = this.tokens[this.p - 1]!.end;
          continue;
        }
        if (t.text === '(') depth++;
        if (t.text === ')') {
          if (depth === 0) break;
          depth--;
        }
        if ((t.text === '}' || t.text === ']') && depth === 0) break;
        afterOperand = t.text === ')';
      } else {
        operand(t);
      }
      parts.push(t);
      endOffset = t.end;
      this.p++;
    }
    if (parts.length === 0) this.fail('expected a value', first);
    if (startOffset > endOffset) startOffset = endOffset;
    return {
      kind: 'expr',
      parts,
      text: this.src.slice(startOffset, endOffset).replace(/\s+/g, ' ').trim(),
      line: first.line,
    };
  }

  private object(): ObjectNode {
    const open = this.expectPunct('{');
    const props: Prop[] = [];
    for (;;) {
      while (this.peek()?.kind === 'newline' || isPunct(this.peek(), ',')) this.p++;
      if (isPunct(this.peek(), '}')) break;
      const decorators = this.decorators();
      const keyToken = this.next();
      let key: string;
      if (keyToken.kind === 'ident') key = keyToken.text;
      else if (keyToken.kind === 'string')
        key = keyToken.interpolations!.length ? keyToken.text : keyToken.fragments!.join('');
      else this.fail(`expected a property name but found ${JSON.stringify(keyToken.text)}`, keyToken);
      if (keyToken.kind === 'ident' && keyToken.text === 'resource' && isIdent(this.peek()))
        this.fail('nested resource declarations are not supported by this reader; use parent:', keyToken);
      this.expectPunct(':');
      const value = this.value(new Set([',', '}']));
      props.push({ key, keyToken, value, decorators });
      const after = this.peek();
      if (!after || !(after.kind === 'newline' || isPunct(after, ',') || isPunct(after, '}')))
        this.fail(`expected a line break, , or } after property ${key}`, after);
    }
    this.expectPunct('}');
    return { kind: 'object', props, line: open.line };
  }

  private array(): ArrayNode | ForNode {
    const open = this.expectPunct('[');
    let k = 0;
    while (this.peek(k)?.kind === 'newline') k++;
    if (isIdent(this.peek(k), 'for')) {
      this.p += k + 1;
      const header: Token[] = [];
      let depth = 0;
      while (!(depth === 0 && isPunct(this.peek(), ':'))) {
        const t = this.next();
        if (isPunct(t, '(')) depth++;
        if (isPunct(t, ')')) depth--;
        if (t.kind === 'newline') this.fail('line break inside a for header', t);
        header.push(t);
      }
      this.expectPunct(':');
      const inAt = header.findIndex((t) => isIdent(t, 'in'));
      if (inAt < 1) this.fail('for needs "<variable> in <array>"', open);
      const variables = header
        .slice(0, inAt)
        .filter((t) => t.kind === 'ident')
        .map((t) => t.text);
      const body = this.value(new Set([']']));
      this.skipNewlines();
      this.expectPunct(']');
      return { kind: 'for', header: header.slice(inAt + 1), variables, body, line: open.line };
    }
    const items: Node[] = [];
    for (;;) {
      while (this.peek()?.kind === 'newline' || isPunct(this.peek(), ',')) this.p++;
      if (isPunct(this.peek(), ']')) break;
      items.push(this.value(new Set([',', ']'])));
    }
    this.expectPunct(']');
    return { kind: 'array', items, line: open.line };
  }
}

function isTokenKind(part: Token | Node | undefined): part is Token {
  return part !== undefined && ['ident', 'number', 'string', 'punct', 'newline'].includes(part.kind);
}

/** Parses Bicep source (throws {@link BicepSyntaxError}). */
export function parseBicep(source: string, path = '<memory>'): BicepFile {
  const tokens = tokenize(source);
  const decls = new Parser(tokens, source).file();
  return { path, source, tokens, decls };
}

/** Reads and parses a Bicep file. */
export function readBicep(path: string): BicepFile {
  return parseBicep(readFileSync(path, 'utf8'), path);
}

// ---------------------------------------------------------------------------------------------
// Navigation helpers
// ---------------------------------------------------------------------------------------------

export const declsOf = (file: BicepFile, kind: Decl['kind']) => file.decls.filter((d) => d.kind === kind);

export function declNamed(file: BicepFile, kind: Decl['kind'], name: string): Decl {
  const found = file.decls.find((d) => d.kind === kind && d.name === name);
  if (!found) throw new Error(`${file.path}: no ${kind} named ${name}`);
  return found;
}

/** The body of a resource or module, looking through `if (...)` and `[for ...]`. */
export function bodyOf(node: Node | undefined): ObjectNode | undefined {
  if (!node) return undefined;
  if (node.kind === 'object') return node;
  if (node.kind === 'if' || node.kind === 'for') return bodyOf(node.body);
  return undefined;
}

/** The value at a dotted property path (`properties.functionAppConfig.runtime`). */
export function propAt(node: Node | undefined, path: string): Node | undefined {
  let current: Node | undefined = node;
  for (const key of path.split('.')) {
    const obj = bodyOf(current);
    current = obj?.props.find((p) => p.key === key)?.value;
    if (!current) return undefined;
  }
  return current;
}

/** The literal a node holds (string without interpolation, number, true, false, null). */
export function literal(node: Node | undefined): string | number | boolean | null | undefined {
  if (node?.kind !== 'expr' || node.parts.length !== 1) return undefined;
  const t = node.parts[0]!;
  if (!isTokenKind(t)) return undefined;
  if (t.kind === 'string') return t.interpolations!.length ? undefined : t.fragments!.join('');
  if (t.kind === 'number') return Number(t.text);
  if (t.kind === 'ident' && t.text === 'true') return true;
  if (t.kind === 'ident' && t.text === 'false') return false;
  if (t.kind === 'ident' && t.text === 'null') return null;
  return undefined;
}

/** Every token in a node, including those inside nested literals and string interpolations. */
export function tokensIn(node: Node | undefined): Token[] {
  const out: Token[] = [];
  const addToken = (t: Token) => {
    out.push(t);
    t.interpolations?.forEach((list) => list.forEach(addToken));
  };
  const visit = (n: Node | undefined): void => {
    if (!n) return;
    switch (n.kind) {
      case 'object':
        for (const p of n.props) {
          if (p.keyToken.kind === 'string') p.keyToken.interpolations!.forEach((l) => l.forEach(addToken));
          p.decorators.forEach((d) => d.args.forEach(visit));
          visit(p.value);
        }
        return;
      case 'array':
        return n.items.forEach(visit);
      case 'for':
        n.header.forEach(addToken);
        return visit(n.body);
      case 'if':
        visit(n.condition);
        return visit(n.body);
      case 'expr':
        for (const part of n.parts) {
          if (isTokenKind(part)) addToken(part);
          else visit(part);
        }
    }
  };
  visit(node);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Evaluation of the static subset
// ---------------------------------------------------------------------------------------------

/** A value known only at deployment time. */
export class Unknown {
  constructor(readonly text: string) {}
  toString(): string {
    return `<${this.text}>`;
  }
}

export type Value = string | number | boolean | null | Value[] | { [key: string]: Value } | Unknown | Lambda;

interface Lambda {
  lambda: { params: string[]; body: Item[] };
}

export class EvalError extends Error {
  override name = 'EvalError';
}

type Item = Token | Node;

/** Fake but deterministic: 13 lowercase base-32 characters, like ARM's uniqueString. */
function uniqueString(...args: string[]): string {
  const digest = createHash('sha256').update(args.join('|')).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  return [...digest.subarray(0, 13)].map((b) => alphabet[b % 32]).join('');
}

const isUnknown = (v: Value | undefined): v is Unknown => v instanceof Unknown;
const isObject = (v: Value): v is { [key: string]: Value } =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Unknown) && !('lambda' in v);

const stringify = (v: Value): string | Unknown => {
  if (isUnknown(v)) return v;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (v === null) return '';
  return JSON.stringify(v);
};

/**
 * Evaluates parameters, variables and expressions of one Bicep file. `params` overrides parameter
 * values; parameters without a value evaluate to their default.
 */
export class Evaluator {
  private readonly varCache = new Map<string, Value>();
  private readonly evaluating = new Set<string>();

  constructor(
    readonly file: BicepFile,
    readonly params: Record<string, Value> = {},
  ) {}

  param(name: string): Value {
    if (name in this.params) return this.params[name]!;
    const decl = this.file.decls.find((d) => d.kind === 'param' && d.name === name);
    if (!decl) throw new EvalError(`no param ${name}`);
    if (!decl.value) throw new EvalError(`param ${name} has no default; pass a value`);
    return this.node(decl.value, new Map());
  }

  variable(name: string): Value {
    if (this.varCache.has(name)) return this.varCache.get(name)!;
    if (this.evaluating.has(name)) throw new EvalError(`var ${name} refers to itself`);
    const decl = this.file.decls.find((d) => d.kind === 'var' && d.name === name);
    if (!decl?.value) throw new EvalError(`no var ${name}`);
    this.evaluating.add(name);
    try {
      const v = this.node(decl.value, new Map());
      this.varCache.set(name, v);
      return v;
    } finally {
      this.evaluating.delete(name);
    }
  }

  node(node: Node, scope: Map<string, Value>): Value {
    switch (node.kind) {
      case 'object': {
        const out: { [key: string]: Value } = {};
        for (const p of node.props) {
          const key = p.keyToken.kind === 'string' ? this.string(p.keyToken, scope) : p.key;
          if (isUnknown(key)) throw new EvalError(`property name ${p.key} is not known before deployment`);
          out[key] = this.node(p.value, scope);
        }
        return out;
      }
      case 'array':
        return node.items.map((item) => this.node(item, scope));
      case 'for':
      case 'if':
        return new Unknown(`${node.kind} at line ${node.line}`);
      case 'expr':
        return new ExprEvaluator(this, node.parts, scope).run();
    }
  }

  string(token: Token, scope: Map<string, Value>): string | Unknown {
    const fragments = token.fragments!;
    let out = fragments[0]!;
    let unknown = false;
    token.interpolations!.forEach((tokens, i) => {
      const v = stringify(new ExprEvaluator(this, tokens, scope).run());
      if (isUnknown(v)) unknown = true;
      out += `${isUnknown(v) ? v.toString() : v}${fragments[i + 1]}`;
    });
    return unknown ? new Unknown(out) : out;
  }

  symbol(name: string, scope: Map<string, Value>): Value {
    if (scope.has(name)) return scope.get(name)!;
    const decl = this.file.decls.find((d) => d.name === name && d.kind !== 'output' && d.kind !== 'type');
    if (!decl) throw new EvalError(`${name} is not declared`);
    if (decl.kind === 'param') return this.param(name);
    if (decl.kind === 'var') return this.variable(name);
    return new Unknown(name);
  }

  loadJson(path: string): Value {
    return JSON.parse(readFileSync(resolve(dirname(this.file.path), path), 'utf8')) as Value;
  }
}

const BINARY: Record<string, number> = {
  '??': 1,
  '||': 2,
  '&&': 3,
  '==': 4,
  '!=': 4,
  '=~': 4,
  '!~': 4,
  '<': 5,
  '>': 5,
  '<=': 5,
  '>=': 5,
  '+': 6,
  '-': 6,
  '*': 7,
  '/': 7,
  '%': 7,
};

/** Bicep functions the evaluator knows; the structure tests also reject calls to any other. */
export const KNOWN_FUNCTIONS = new Set([
  'concat',
  'contains',
  'deployer',
  'empty',
  'environment',
  'first',
  'guid',
  'items',
  'last',
  'length',
  'loadJsonContent',
  'map',
  'replace',
  'resourceGroup',
  'split',
  'string',
  'subscription',
  'subscriptionResourceId',
  'take',
  'tenant',
  'toLower',
  'toUpper',
  'union',
  'uniqueString',
]);

class ExprEvaluator {
  private i = 0;

  constructor(
    private readonly ev: Evaluator,
    private readonly items: Item[],
    private readonly scope: Map<string, Value>,
  ) {}

  run(): Value {
    const v = this.ternary();
    if (this.i < this.items.length) throw new EvalError(`unexpected ${this.describe(this.items[this.i])}`);
    return v;
  }

  private describe(item: Item | undefined): string {
    if (!item) return 'end of expression';
    return isTokenKind(item) ? JSON.stringify(item.text) : `${item.kind} literal`;
  }

  private peekPunct(text: string): boolean {
    const t = this.items[this.i];
    return isTokenKind(t) && t.kind === 'punct' && t.text === text;
  }

  private expect(text: string): void {
    if (!this.peekPunct(text))
      throw new EvalError(`expected ${text}, found ${this.describe(this.items[this.i])}`);
    this.i++;
  }

  private ternary(): Value {
    const cond = this.binary(0);
    if (!this.peekPunct('?')) return cond;
    this.i++;
    // Evaluate both branches for syntax, keep the chosen one.
    const yes = this.ternary();
    this.expect(':');
    const no = this.ternary();
    if (isUnknown(cond)) return new Unknown(`${cond.text} ? … : …`);
    if (typeof cond !== 'boolean') throw new EvalError('a ternary condition must be a bool');
    return cond ? yes : no;
  }

  private binary(minPrec: number): Value {
    let left = this.unary();
    for (;;) {
      const t = this.items[this.i];
      if (!isTokenKind(t) || t.kind !== 'punct') return left;
      const prec = BINARY[t.text];
      if (prec === undefined || prec < minPrec) return left;
      this.i++;
      const right = this.binary(prec + 1);
      left = this.apply(t.text, left, right);
    }
  }

  private apply(op: string, a: Value, b: Value): Value {
    if (op === '??') return a === null ? b : a;
    if (isUnknown(a) || isUnknown(b)) return new Unknown(`${String(a)} ${op} ${String(b)}`);
    switch (op) {
      case '||':
        return Boolean(a) || Boolean(b);
      case '&&':
        return Boolean(a) && Boolean(b);
      case '==':
        return JSON.stringify(a) === JSON.stringify(b);
      case '!=':
        return JSON.stringify(a) !== JSON.stringify(b);
      case '=~':
        return String(a).toLowerCase() === String(b).toLowerCase();
      case '!~':
        return String(a).toLowerCase() !== String(b).toLowerCase();
      case '<':
        return (a as number) < (b as number);
      case '>':
        return (a as number) > (b as number);
      case '<=':
        return (a as number) <= (b as number);
      case '>=':
        return (a as number) >= (b as number);
      case '+':
        return (a as number) + (b as number);
      case '-':
        return (a as number) - (b as number);
      case '*':
        return (a as number) * (b as number);
      case '/':
        return Math.trunc((a as number) / (b as number));
      case '%':
        return (a as number) % (b as number);
    }
    throw new EvalError(`unknown operator ${op}`);
  }

  private unary(): Value {
    if (this.peekPunct('!')) {
      this.i++;
      const v = this.unary();
      return isUnknown(v) ? new Unknown(`!${v.text}`) : !v;
    }
    if (this.peekPunct('-')) {
      this.i++;
      const v = this.unary();
      return isUnknown(v) ? v : -(v as number);
    }
    return this.postfix(this.primary());
  }

  private primary(): Value {
    const item = this.items[this.i];
    if (!item) throw new EvalError('expected a value');
    if (!isTokenKind(item)) {
      this.i++;
      return this.ev.node(item, this.scope);
    }
    // Lambdas: x => body, (a, b) => body
    const lambda = this.lambda();
    if (lambda) return lambda;
    this.i++;
    switch (item.kind) {
      case 'string':
        return this.ev.string(item, this.scope);
      case 'number':
        return Number(item.text);
      case 'punct':
        if (item.text === '(') {
          const v = this.ternary();
          this.expect(')');
          return v;
        }
        throw new EvalError(`unexpected ${item.text}`);
      case 'ident':
        if (item.text === 'true') return true;
        if (item.text === 'false') return false;
        if (item.text === 'null') return null;
        if (this.peekPunct('(')) return this.call(item.text);
        return this.ev.symbol(item.text, this.scope);
    }
    throw new EvalError(`unexpected ${item.text}`);
  }

  private lambda(): Value | undefined {
    const at = this.i;
    const params: string[] = [];
    const t = this.items[at];
    let j: number;
    if (isTokenKind(t) && t.kind === 'ident') {
      params.push(t.text);
      j = at + 1;
    } else if (isTokenKind(t) && t.kind === 'punct' && t.text === '(') {
      j = at + 1;
      for (;;) {
        const n = this.items[j];
        if (!isTokenKind(n)) return undefined;
        if (n.kind === 'ident') params.push(n.text);
        else if (!(n.kind === 'punct' && (n.text === ',' || n.text === ')'))) return undefined;
        j++;
        if (n.kind === 'punct' && n.text === ')') break;
      }
    } else {
      return undefined;
    }
    const arrow = this.items[j];
    if (!(isTokenKind(arrow) && arrow.kind === 'punct' && arrow.text === '=>')) return undefined;
    // The body runs to the end of this argument: up to a , or ) at depth 0.
    let k = j + 1;
    let depth = 0;
    for (; k < this.items.length; k++) {
      const n = this.items[k]!;
      if (!isTokenKind(n) || n.kind !== 'punct') continue;
      if (n.text === '(') depth++;
      if (n.text === ')' && depth-- === 0) break;
      if (n.text === ',' && depth === 0) break;
    }
    const body = this.items.slice(j + 1, k);
    this.i = k;
    return { lambda: { params, body } };
  }

  private args(): Value[] {
    this.expect('(');
    const list: Value[] = [];
    while (!this.peekPunct(')')) {
      list.push(this.ternary());
      if (this.peekPunct(',')) this.i++;
      else break;
    }
    this.expect(')');
    return list;
  }

  private invoke(fn: Value, args: Value[]): Value {
    if (!(typeof fn === 'object' && fn !== null && 'lambda' in fn)) throw new EvalError('expected a lambda');
    const { params, body } = (fn as Lambda).lambda;
    const scope = new Map(this.scope);
    params.forEach((p, i) => scope.set(p, args[i] ?? null));
    return new ExprEvaluator(this.ev, body, scope).run();
  }

  private call(name: string): Value {
    const args = this.args();
    if (!KNOWN_FUNCTIONS.has(name)) throw new EvalError(`unknown function ${name}()`);
    const str = (v: Value | undefined) => {
      if (typeof v !== 'string') throw new EvalError(`${name}() needs a string`);
      return v;
    };
    if (args.some((a) => isUnknown(a)) && !['union', 'concat', 'empty', 'string', 'guid'].includes(name))
      return new Unknown(`${name}(…)`);
    switch (name) {
      case 'concat':
        if (args.some((a) => isUnknown(a))) return new Unknown('concat(…)');
        if (args.every((a) => Array.isArray(a))) return (args as Value[][]).flat();
        return args.map((a) => stringify(a) as string).join('');
      case 'contains': {
        const [c, x] = args;
        if (Array.isArray(c)) return c.some((v) => JSON.stringify(v) === JSON.stringify(x));
        if (typeof c === 'string') return c.includes(str(x));
        return isObject(c!) && str(x) in c;
      }
      case 'empty': {
        const [v] = args;
        if (isUnknown(v)) return new Unknown('empty(…)');
        if (v === null || v === '') return true;
        if (Array.isArray(v)) return v.length === 0;
        return isObject(v!) ? Object.keys(v).length === 0 : false;
      }
      case 'first':
        return Array.isArray(args[0]) ? (args[0][0] ?? null) : str(args[0]).slice(0, 1);
      case 'last':
        return Array.isArray(args[0]) ? (args[0].at(-1) ?? null) : str(args[0]).slice(-1);
      case 'length':
        return Array.isArray(args[0]) ? args[0].length : str(args[0]).length;
      case 'guid':
        return new Unknown('guid(…)');
      case 'items': {
        const obj = args[0]!;
        if (!isObject(obj)) throw new EvalError('items() needs an object');
        return Object.keys(obj)
          .sort((a, b) => a.localeCompare(b))
          .map((key) => ({ key, value: obj[key]! }));
      }
      case 'map': {
        const [arr, fn] = args;
        if (!Array.isArray(arr)) throw new EvalError('map() needs an array');
        return arr.map((v, i) => this.invoke(fn!, [v, i]));
      }
      case 'loadJsonContent':
        return this.ev.loadJson(str(args[0]));
      case 'replace':
        return str(args[0]).split(str(args[1])).join(str(args[2]));
      case 'split':
        return str(args[0]).split(str(args[1]));
      case 'string': {
        const s = stringify(args[0]!);
        return s;
      }
      case 'take':
        return Array.isArray(args[0])
          ? args[0].slice(0, args[1] as number)
          : str(args[0]).slice(0, args[1] as number);
      case 'toLower':
        return str(args[0]).toLowerCase();
      case 'toUpper':
        return str(args[0]).toUpperCase();
      case 'union': {
        if (args.every((a) => Array.isArray(a))) {
          const seen = new Map<string, Value>();
          for (const v of (args as Value[][]).flat()) seen.set(JSON.stringify(v), v);
          return [...seen.values()];
        }
        const out: { [key: string]: Value } = {};
        for (const a of args) {
          if (!isObject(a)) throw new EvalError('union() of objects needs objects');
          Object.assign(out, a);
        }
        return out;
      }
      case 'uniqueString':
        return uniqueString(...args.map((a) => str(a)));
      case 'subscription':
        return {
          id: '/subscriptions/00000000-0000-0000-0000-000000000000',
          subscriptionId: '00000000-0000-0000-0000-000000000000',
          tenantId: '11111111-1111-1111-1111-111111111111',
        };
      case 'tenant':
        return { tenantId: '11111111-1111-1111-1111-111111111111' };
      case 'deployer':
        return { objectId: '22222222-2222-2222-2222-222222222222' };
      case 'environment':
        // The public cloud's values; the templates only read these.
        return {
          name: 'AzureCloud',
          authentication: { loginEndpoint: 'https://login.microsoftonline.com/' },
          suffixes: { storage: 'core.windows.net' },
        };
      case 'subscriptionResourceId': {
        const [type, ...segments] = args.map((a) => str(a));
        return `/subscriptions/00000000-0000-0000-0000-000000000000/providers/${type}/${segments.join('/')}`;
      }
      case 'resourceGroup':
        return new Unknown(`${name}(…)`);
    }
    throw new EvalError(`unknown function ${name}()`);
  }

  private postfix(value: Value): Value {
    let v = value;
    for (;;) {
      if (this.peekPunct('.') || this.peekPunct('.?')) {
        const optional = this.peekPunct('.?');
        this.i++;
        const name = this.items[this.i];
        if (!isTokenKind(name) || name.kind !== 'ident') throw new EvalError('expected a member name');
        this.i++;
        if (this.peekPunct('('))
          throw new EvalError(`method calls such as .${name.text}() are not supported`);
        if (isUnknown(v)) {
          v = new Unknown(`${v.text}.${name.text}`);
        } else if (isObject(v)) {
          if (!(name.text in v)) {
            if (optional) return null;
            throw new EvalError(`no member ${name.text}`);
          }
          v = v[name.text]!;
        } else {
          throw new EvalError(`.${name.text} on a non-object`);
        }
        continue;
      }
      const next = this.items[this.i];
      if (next && !isTokenKind(next) && next.kind === 'array' && next.items.length === 1) {
        // Index access: x[0] or x['key'].
        this.i++;
        const index = this.ev.node(next.items[0]!, this.scope);
        if (isUnknown(v) || isUnknown(index)) v = new Unknown('index');
        else if (Array.isArray(v) && typeof index === 'number') v = v[index] ?? null;
        else if (isObject(v) && typeof index === 'string') v = v[index] ?? null;
        else throw new EvalError('bad index');
        continue;
      }
      if (this.peekPunct('!')) {
        this.i++;
        continue;
      }
      return v;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reference checks
// ---------------------------------------------------------------------------------------------

const KEYWORDS = new Set(['true', 'false', 'null', 'in', 'for', 'if', 'existing', 'az', 'sys']);
const MEMBER_ACCESS = new Set(['.', '.?', '::']);

export interface Reference {
  name: string;
  line: number;
  problem: 'undeclared' | 'unknown function';
}

/**
 * Identifiers used as values that no declaration, loop variable or lambda parameter defines, and
 * calls of functions outside {@link KNOWN_FUNCTIONS}: the typos a compiler would report.
 */
export function unresolvedReferences(file: BicepFile): Reference[] {
  const declared = new Set(file.decls.filter((d) => d.kind !== 'targetScope').map((d) => d.name));
  const problems: Reference[] = [];

  const checkTokens = (list: Token[], scope: Set<string>) => {
    const local = new Set(scope);
    list.forEach((t, j) => {
      if (!isPunct(t, '=>')) return;
      const before = list[j - 1];
      if (before?.kind === 'ident') local.add(before.text);
      if (isPunct(before, ')')) {
        for (let k = j - 2; k >= 0 && !isPunct(list[k], '('); k--)
          if (list[k]!.kind === 'ident') local.add(list[k]!.text);
      }
    });
    list.forEach((t, j) => {
      if (t.kind === 'string') t.interpolations!.forEach((inner) => checkTokens(inner, local));
      if (t.kind !== 'ident' || KEYWORDS.has(t.text)) return;
      const prev = list[j - 1];
      if (prev?.kind === 'punct' && MEMBER_ACCESS.has(prev.text)) return;
      if (isPunct(list[j + 1], '(')) {
        if (!KNOWN_FUNCTIONS.has(t.text))
          problems.push({ name: t.text, line: t.line, problem: 'unknown function' });
        return;
      }
      if (!declared.has(t.text) && !local.has(t.text))
        problems.push({ name: t.text, line: t.line, problem: 'undeclared' });
    });
  };

  const visit = (node: Node | undefined, scope: Set<string>): void => {
    if (!node) return;
    switch (node.kind) {
      case 'object':
        for (const p of node.props) {
          if (p.keyToken.kind === 'string') p.keyToken.interpolations!.forEach((l) => checkTokens(l, scope));
          p.decorators.forEach((d) => d.args.forEach((a) => visit(a, scope)));
          visit(p.value, scope);
        }
        return;
      case 'array':
        return node.items.forEach((item) => visit(item, scope));
      case 'for':
        checkTokens(node.header, scope);
        return visit(node.body, new Set([...scope, ...node.variables]));
      case 'if':
        visit(node.condition, scope);
        return visit(node.body, scope);
      case 'expr': {
        // Tokens between nested literals form one list, so lambdas and calls are seen whole.
        const flat: Token[] = [];
        for (const part of node.parts) {
          if (isTokenKind(part)) flat.push(part);
          else visit(part, new Set([...scope, ...lambdaParams(node)]));
        }
        checkTokens(flat, scope);
      }
    }
  };

  for (const decl of file.decls) {
    if (decl.kind === 'type' || decl.kind === 'import' || decl.kind === 'func') continue;
    decl.decorators.forEach((d) => d.args.forEach((a) => visit(a, new Set())));
    visit(decl.value, new Set());
  }
  return problems;
}

function lambdaParams(node: ExprNode): string[] {
  const names: string[] = [];
  node.parts.forEach((part, j) => {
    if (!isTokenKind(part) || !isPunct(part, '=>')) return;
    const before = node.parts[j - 1];
    if (isTokenKind(before) && before.kind === 'ident') names.push(before.text);
  });
  return names;
}

/** Dotted chains in a token list: `a.b.c` → ['a', 'b', 'c'] (`.?` counts as a dot). */
export function memberChains(list: Token[]): string[][] {
  const chains: string[][] = [];
  for (let j = 0; j < list.length; j++) {
    const t = list[j]!;
    const prev = list[j - 1];
    if (t.kind !== 'ident' || (prev?.kind === 'punct' && MEMBER_ACCESS.has(prev.text))) continue;
    const chain = [t.text];
    let k = j + 1;
    while ((isPunct(list[k], '.') || isPunct(list[k], '.?')) && list[k + 1]?.kind === 'ident') {
      chain.push(list[k + 1]!.text);
      k += 2;
    }
    if (chain.length > 1) chains.push(chain);
  }
  return chains;
}
