/**
 * ASP.NET Core route templates as the Functions host uses them for HTTP triggers (durable-host-spec §4.1):
 * case-insensitive literals, `{p}`, `{p?}`, `{p=default}`, `{p:int}` and other inline constraints,
 * `{*rest}` catch-all, several parameters in one segment (`{name}.{ext}`). Routes are tried in ASP.NET
 * precedence order: literal segments before parameters, constrained parameters before free ones,
 * catch-alls last.
 */

export interface RouteParameter {
  name: string;
  optional: boolean;
  catchAll: boolean;
  defaultValue?: string;
  constraints: Constraint[];
}

interface Constraint {
  text: string;
  test(value: string): boolean;
}

type Part = { literal: string } | { param: RouteParameter };

export interface CompiledRoute {
  template: string;
  parameters: RouteParameter[];
  /** Per-segment precedence digits, lower wins (1 literal, 2 complex, 3 constrained, 4 free, 5 catch-all). */
  precedence: number[];
  match(path: string): Record<string, string> | undefined;
}

export class RouteTemplateError extends Error {
  constructor(template: string, message: string) {
    super(`Invalid route template '${template}': ${message}`);
    this.name = 'RouteTemplateError';
  }
}

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function numberArg(args: string[], index: number, template: string, name: string): number {
  const value = Number(args[index]);
  if (args[index] === undefined || !Number.isFinite(value)) {
    throw new RouteTemplateError(template, `constraint '${name}' needs a numeric argument`);
  }
  return value;
}

const numberPattern = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function makeConstraint(text: string, template: string): Constraint {
  const match = /^([A-Za-z]+)(?:\((.*)\))?$/s.exec(text);
  if (!match) throw new RouteTemplateError(template, `unknown constraint '${text}'`);
  const name = match[1]!.toLowerCase();
  const rawArgs = match[2];
  const args = rawArgs === undefined ? [] : rawArgs.split(',').map((a) => a.trim());
  const inRange = (v: string, min: number, max: number): boolean =>
    /^[+-]?\d+$/.test(v) && +v >= min && +v <= max;
  let test: (value: string) => boolean;
  switch (name) {
    case 'int':
      test = (v) => inRange(v, -(2 ** 31), 2 ** 31 - 1);
      break;
    case 'long':
      test = (v) => /^[+-]?\d+$/.test(v) && Number.isSafeInteger(Number(v));
      break;
    case 'bool':
      test = (v) => /^(true|false)$/i.test(v);
      break;
    case 'decimal':
    case 'double':
    case 'float':
      test = (v) => numberPattern.test(v);
      break;
    case 'datetime':
      test = (v) => !Number.isNaN(Date.parse(v));
      break;
    case 'guid':
      test = (v) => /^[{(]?[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}[)}]?$/i.test(v);
      break;
    case 'alpha':
      test = (v) => /^[a-z]+$/i.test(v);
      break;
    case 'required':
      test = (v) => v.length > 0;
      break;
    case 'minlength': {
      const min = numberArg(args, 0, template, name);
      test = (v) => v.length >= min;
      break;
    }
    case 'maxlength': {
      const max = numberArg(args, 0, template, name);
      test = (v) => v.length <= max;
      break;
    }
    case 'length': {
      const a = numberArg(args, 0, template, name);
      const b = args.length > 1 ? numberArg(args, 1, template, name) : a;
      test = (v) => v.length >= a && v.length <= b;
      break;
    }
    case 'min': {
      const min = numberArg(args, 0, template, name);
      test = (v) => /^[+-]?\d+$/.test(v) && Number(v) >= min;
      break;
    }
    case 'max': {
      const max = numberArg(args, 0, template, name);
      test = (v) => /^[+-]?\d+$/.test(v) && Number(v) <= max;
      break;
    }
    case 'range': {
      const min = numberArg(args, 0, template, name);
      const max = numberArg(args, 1, template, name);
      test = (v) => inRange(v, min, max);
      break;
    }
    case 'regex': {
      if (rawArgs === undefined) throw new RouteTemplateError(template, `constraint 'regex' needs a pattern`);
      let regex: RegExp;
      try {
        regex = new RegExp(rawArgs, 'i');
      } catch (err) {
        throw new RouteTemplateError(template, `bad regex constraint: ${(err as Error).message}`);
      }
      test = (v) => regex.test(v);
      break;
    }
    case 'file':
      test = (v) => /\.[^./]+$/.test(v);
      break;
    case 'nonfile':
      test = (v) => !/\.[^./]+$/.test(v);
      break;
    default:
      throw new RouteTemplateError(template, `unknown constraint '${text}'`);
  }
  return { text, test };
}

/** Splits `a:b(x:y):c` on the colons that are not inside parentheses. */
function splitConstraints(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ':' && depth === 0) {
      out.push(current);
      current = '';
    } else current += ch;
  }
  out.push(current);
  return out;
}

function parseParameter(body: string, template: string): RouteParameter {
  let text = body;
  let catchAll = false;
  if (text.startsWith('**')) {
    catchAll = true;
    text = text.slice(2);
  } else if (text.startsWith('*')) {
    catchAll = true;
    text = text.slice(1);
  }
  let optional = false;
  let defaultValue: string | undefined;
  // The default (`=x`) and optional marker (`?`) follow the constraints; find '=' outside parentheses.
  let depth = 0;
  let eq = -1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === '=' && depth === 0) {
      eq = i;
      break;
    }
  }
  if (eq >= 0) {
    defaultValue = text.slice(eq + 1);
    text = text.slice(0, eq);
  } else if (text.endsWith('?')) {
    optional = true;
    text = text.slice(0, -1);
  }
  const [name, ...constraintTexts] = splitConstraints(text);
  if (!name || !/^[A-Za-z_][\w-]*$/.test(name)) {
    throw new RouteTemplateError(template, `bad parameter name '${name ?? ''}'`);
  }
  const constraints = constraintTexts.map((c) => makeConstraint(c, template));
  return { name, optional, catchAll, defaultValue, constraints };
}

/** Splits a template into segments of literal and parameter parts; `{{`/`}}` are literal braces. */
function parseSegments(template: string): Part[][] {
  const segments: Part[][] = [];
  let parts: Part[] = [];
  let literal = '';
  const flushLiteral = (): void => {
    if (literal) parts.push({ literal });
    literal = '';
  };
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    if (ch === '{' && template[i + 1] === '{') {
      literal += '{';
      i++;
    } else if (ch === '}' && template[i + 1] === '}') {
      literal += '}';
      i++;
    } else if (ch === '{') {
      let depth = 0;
      let j = i + 1;
      let body = '';
      for (; j < template.length; j++) {
        const c = template[j]!;
        if (c === '}' && template[j + 1] === '}') {
          body += '}';
          j++;
          continue;
        }
        if (c === '{' && template[j + 1] === '{') {
          body += '{';
          j++;
          continue;
        }
        if (c === '(') depth++;
        if (c === ')') depth--;
        if (c === '}' && depth <= 0) break;
        body += c;
      }
      if (j >= template.length) throw new RouteTemplateError(template, 'unclosed {');
      flushLiteral();
      parts.push({ param: parseParameter(body, template) });
      i = j;
    } else if (ch === '}') {
      throw new RouteTemplateError(template, 'unmatched }');
    } else if (ch === '/') {
      flushLiteral();
      segments.push(parts);
      parts = [];
    } else {
      literal += ch;
    }
  }
  flushLiteral();
  segments.push(parts);
  return segments.filter((segment) => segment.length > 0);
}

function segmentPrecedence(segment: Part[]): number {
  if (segment.length > 1) return 2;
  const part = segment[0]!;
  if ('literal' in part) return 1;
  if (part.param.catchAll) return 5;
  return part.param.constraints.length > 0 ? 3 : 4;
}

/**
 * Compiles `prefix/template` (prefix and template without surrounding slashes) into a matcher for a
 * URL path (`/api/...`, still percent-encoded). Parameter values are decoded.
 */
export function compileRoute(template: string, prefix = ''): CompiledRoute {
  const cleaned = template.trim().replace(/^[~]?\/+|\/+$/g, '');
  const segments = parseSegments(cleaned);
  const parameters: RouteParameter[] = [];
  const groups: RouteParameter[] = [];
  let source = '';
  for (const literal of prefix.split('/').filter(Boolean)) source += `/${escapeRegex(literal)}`;

  segments.forEach((segment, index) => {
    const isLast = index === segments.length - 1;
    if (segment.length === 1 && 'param' in segment[0]!) {
      const param = segment[0].param;
      parameters.push(param);
      groups.push(param);
      if (param.catchAll) {
        if (!isLast) throw new RouteTemplateError(template, 'a catch-all parameter must be the last segment');
        source += '(?:/(.*))?';
      } else if (param.optional || param.defaultValue !== undefined) {
        const rest = segments.slice(index + 1);
        const restOptional = rest.every(
          (s) =>
            s.length === 1 &&
            'param' in s[0]! &&
            (s[0].param.optional || s[0].param.defaultValue !== undefined),
        );
        if (!restOptional) {
          throw new RouteTemplateError(template, `optional parameter '${param.name}' must be at the end`);
        }
        source += '(?:/([^/]+))?';
      } else {
        source += '/([^/]+)';
      }
      return;
    }
    source += '/';
    segment.forEach((part, partIndex) => {
      if ('literal' in part) {
        source += escapeRegex(part.literal);
        return;
      }
      const param = part.param;
      if (param.catchAll)
        throw new RouteTemplateError(template, 'a catch-all parameter must be a whole segment');
      parameters.push(param);
      groups.push(param);
      const followedByLiteral = partIndex < segment.length - 1;
      const body = followedByLiteral ? '[^/]+?' : '[^/]+';
      source += param.optional ? `(${body.replace('+', '*')})` : `(${body})`;
    });
  });

  const names = new Set<string>();
  for (const p of parameters) {
    const key = p.name.toLowerCase();
    if (names.has(key)) throw new RouteTemplateError(template, `parameter '${p.name}' appears twice`);
    names.add(key);
  }

  const regex = new RegExp(`^${source}/?$`, 'i');
  return {
    template: cleaned,
    parameters,
    precedence: segments.map(segmentPrecedence),
    match(path: string) {
      const m = regex.exec(path);
      if (!m) return undefined;
      const params: Record<string, string> = {};
      for (let i = 0; i < groups.length; i++) {
        const param = groups[i]!;
        const raw = m[i + 1];
        let value: string | undefined;
        if (raw === undefined || raw === '') value = param.defaultValue;
        else {
          try {
            value = decodeURIComponent(raw);
          } catch {
            return undefined;
          }
        }
        if (value === undefined) continue;
        if (!param.constraints.every((c) => c.test(value))) return undefined;
        params[param.name] = value;
      }
      return params;
    },
  };
}

/** Sort comparator: ASP.NET inbound precedence (lower digits first, segment by segment). */
export function comparePrecedence(a: CompiledRoute, b: CompiledRoute): number {
  const length = Math.max(a.precedence.length, b.precedence.length);
  for (let i = 0; i < length; i++) {
    const x = a.precedence[i] ?? 0;
    const y = b.precedence[i] ?? 0;
    if (x !== y) return x - y;
  }
  return 0;
}
