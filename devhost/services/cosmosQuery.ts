/**
 * Makes the embedded Cosmos emulator's queries linear in the number of documents.
 *
 * `@vercel/cosmosdb-server` runs every query through `@zeit/cosmosdb-query`, which compiles the SQL
 * to a JavaScript function. Two things in that library made a query on 10,000 documents cost about
 * half a second (measured: docs/devhost.md, "Cosmos emulator query speed"):
 * - the compiled function gathers the documents with `coll.reduce(($, c) => [...$, { c }], [])`,
 *   which copies the accumulator on every document: O(n²), 50 million element copies at 10,000
 *   documents, about 98% of a query's time;
 * - it is compiled again (`new Function`) on every execution.
 *
 * `installLinearQueries()` replaces the library's `Query.prototype.exec` with one that compiles the
 * same JavaScript AST the library's transformer builds, with each such `reduce` step rewritten to
 * push onto its accumulator (which is always a fresh `[]` of that very call, so the mutation is
 * invisible), and keeps the compiled function with the query (the server already caches queries
 * by SQL text). Nothing else changes: same filters, same sort (and its `_rid` tie-break), same
 * TOP, same continuation tokens, same errors. test/devhost/cosmosQuery.test.ts checks that each
 * query Sluice sends answers exactly as the library's own executor does.
 */
import { dirname } from 'node:path';
// The query library and code generator `@vercel/cosmosdb-server` 1.0.1 depends on (pinned by it);
// installLinearQueries() checks that these are the very copies the server loads.
import generateModule from '@babel/generator';
import queryFactory from '@zeit/cosmosdb-query';
import * as aggregateFunctions from '@zeit/cosmosdb-query/lib/aggregate-functions';
import * as builtinFunctions from '@zeit/cosmosdb-query/lib/builtin-functions';
import * as helpers from '@zeit/cosmosdb-query/lib/helpers';
import transformModule from '@zeit/cosmosdb-query/lib/transformer';

/* eslint-disable @typescript-eslint/no-explicit-any -- the library's JavaScript AST is untyped. */

type JsNode = { type: string; [key: string]: any };
type QueryFn = (...args: unknown[]) => unknown;
interface ExecOptions {
  parameters?: { name: string; value: unknown }[] | null;
  udf?: Record<string, unknown> | null;
  maxItemCount?: number | null;
  continuation?: { token: string } | null;
  compositeIndexes?: unknown[][] | null;
}
interface QueryObject {
  ast: Record<string, unknown>;
  exec(coll: unknown[], options?: ExecOptions): unknown;
}

const transform = transformModule as unknown as (sqlAst: Record<string, unknown>) => JsNode;
const generate = ((generateModule as unknown as { default?: unknown }).default ?? generateModule) as (
  ast: JsNode,
) => { code: string };

const isIdent = (n: JsNode | undefined, name: string): boolean => n?.type === 'Identifier' && n.name === name;

/** `[...$, a, ...b]` → `($.push(a, ...b), $)`; anything else → undefined. */
function pushInstead(body: JsNode | undefined): JsNode | undefined {
  if (body?.type !== 'ArrayExpression') return undefined;
  const [first, ...rest] = body.elements as (JsNode | null)[];
  if (first?.type !== 'SpreadElement' || !isIdent(first.argument, '$') || rest.some((e) => e === null)) {
    return undefined;
  }
  return {
    type: 'SequenceExpression',
    expressions: [
      {
        type: 'CallExpression',
        callee: {
          type: 'MemberExpression',
          object: { type: 'Identifier', name: '$' },
          property: { type: 'Identifier', name: 'push' },
          computed: false,
        },
        arguments: rest,
      },
      { type: 'Identifier', name: '$' },
    ],
  };
}

/**
 * Rewrites, in place, every `X.reduce(($, d) => [...$, ...], [])` and
 * `X.reduce(($, d) => cond ? [...$, ...] : $, [])` of the library's output to push onto `$`.
 * Only a reduce whose initial value is the literal `[]` is touched: that array is created by the
 * call and reaches nothing else, so pushing onto it gives the same array the copies would have.
 * Returns how many steps were rewritten.
 */
export function linearise(node: unknown): number {
  if (!node || typeof node !== 'object') return 0;
  if (Array.isArray(node)) return node.reduce((n: number, child) => n + linearise(child), 0);
  let count = 0;
  const n = node as JsNode;
  if (
    n.type === 'CallExpression' &&
    n.callee?.type === 'MemberExpression' &&
    !n.callee.computed &&
    isIdent(n.callee.property, 'reduce') &&
    n.arguments?.length === 2 &&
    n.arguments[1]?.type === 'ArrayExpression' &&
    n.arguments[1].elements.length === 0 &&
    n.arguments[0]?.type === 'ArrowFunctionExpression' &&
    isIdent(n.arguments[0].params?.[0], '$')
  ) {
    const fn = n.arguments[0] as JsNode;
    const body = fn.body as JsNode;
    const direct = pushInstead(body);
    if (direct) {
      fn.body = direct;
      count += 1;
    } else if (body.type === 'ConditionalExpression' && isIdent(body.alternate, '$')) {
      const consequent = pushInstead(body.consequent);
      if (consequent) {
        body.consequent = consequent;
        count += 1;
      }
    }
  }
  for (const key of Object.keys(n)) {
    if (key !== 'type') count += linearise(n[key]);
  }
  return count;
}

let installed = false;
const compiled = new WeakMap<object, QueryFn>();

/** The library's JavaScript for `sql`, linearised: what the patched `exec` runs (for tests). */
export function linearCode(sql: string): { code: string; rewritten: number } {
  const ast = transform(queryFactory(sql).ast);
  const rewritten = linearise(ast);
  return { code: generate(ast).code, rewritten };
}

/**
 * Installs the linear `exec` on the emulator's query library (once per process; idempotent).
 * Returns false, changing nothing, when the server resolves a different copy of the library than
 * the one imported here (a dependency upgrade): the emulator then runs as the library ships.
 */
export function installLinearQueries(): boolean {
  if (installed) return true;
  const serverDir = dirname(require.resolve('@vercel/cosmosdb-server'));
  if (
    require.resolve('@zeit/cosmosdb-query', { paths: [serverDir] }) !==
    require.resolve('@zeit/cosmosdb-query')
  ) {
    return false;
  }
  const proto = Object.getPrototypeOf(queryFactory('SELECT * FROM c')) as QueryObject;
  proto.exec = function exec(
    this: QueryObject,
    coll: unknown[],
    { parameters, udf = {}, maxItemCount, continuation, compositeIndexes }: ExecOptions = {},
  ): unknown {
    let run = compiled.get(this);
    if (!run) {
      const ast = transform(this.ast);
      linearise(ast);
      // The library's own executor evaluates its generated code the same way.
      run = new Function(`"use strict";return (${generate(ast).code})`)() as QueryFn;
      compiled.set(this, run);
    }
    const params: Record<string, unknown> = {};
    for (const { name, value } of parameters ?? []) params[name.slice(1)] = value;
    return run(
      aggregateFunctions,
      builtinFunctions,
      coll,
      helpers,
      udf,
      params,
      maxItemCount,
      continuation,
      compositeIndexes,
    );
  };
  installed = true;
  return true;
}
