/**
 * Pipelines as code: a folder of pipeline definitions (JSON or YAML, one pipeline per file) is the
 * source of truth, and `sluice pipelines validate | plan | apply DIR` checks it offline, shows what
 * it would change on a deployed Sluice, and changes it. Validation is the server's own schema
 * (lib/pipelines/definition.ts, cross-field checks included); apply writes each changed pipeline
 * with `If-Match` on the version the plan read, so a change made on the server meanwhile is refused
 * rather than overwritten. docs/delivery.md, "Pipelines as code".
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parseDocument } from 'yaml';
import { pipelineDefinitionSchema } from '../lib/pipelines/definition';
import type { FieldChange } from '../lib/pipelines/diff';
import { diffDefinitions, shortJson } from '../lib/pipelines/diff';

export interface AsCodeContext {
  url: string;
  key: string | undefined;
  json: boolean;
  out: (line: string) => void;
}

/** Something wrong with a definition file: the file, the field (as the API names it) and what. */
export interface DefinitionProblem {
  file: string;
  field: string;
  message: string;
}

export interface LocalDefinition {
  file: string;
  name: string;
  /** What is sent at PUT: the file's content, with `name` filled from the file name if absent. */
  body: Record<string, unknown>;
  /** The schema's output (defaults applied) as JSON: what the server would store. */
  normalized: Record<string, unknown>;
}

const DEFINITION_FILE = /\.(json|ya?ml)$/i;

/** `file: field: message`, the one format every problem is printed in. */
export const problemLine = (p: DefinitionProblem) => `${p.file}: ${p.field}: ${p.message}`;

/**
 * Reads and validates every definition in DIR (its `.json`, `.yaml` and `.yml` files, not
 * sub-folders; dot files skipped), or one file. Offline: the checks only the server can make (a
 * golden set blob exists, the host allows a user-code job) happen at apply.
 */
export async function readDefinitions(
  target: string,
): Promise<{ definitions: LocalDefinition[]; problems: DefinitionProblem[] }> {
  let files: string[];
  try {
    const s = await stat(target);
    files = s.isDirectory()
      ? (await readdir(target))
          .filter((f) => DEFINITION_FILE.test(f) && !f.startsWith('.'))
          .sort()
          .map((f) => join(target, f))
      : [target];
  } catch (err) {
    return {
      definitions: [],
      problems: [{ file: target, field: '(file)', message: `cannot read: ${(err as Error).message}` }],
    };
  }
  if (files.length === 0) {
    return {
      definitions: [],
      problems: [
        { file: target, field: '(folder)', message: 'no .json, .yaml or .yml pipeline definitions' },
      ],
    };
  }
  const definitions: LocalDefinition[] = [];
  const problems: DefinitionProblem[] = [];
  const byName = new Map<string, string>();
  for (const file of files) {
    const read = await readDefinition(file);
    if ('problems' in read) {
      problems.push(...read.problems);
      continue;
    }
    const other = byName.get(read.definition.name);
    if (other !== undefined) {
      problems.push({
        file,
        field: 'name',
        message: `pipeline "${read.definition.name}" is also defined in ${other}`,
      });
      continue;
    }
    byName.set(read.definition.name, file);
    definitions.push(read.definition);
  }
  return { definitions, problems };
}

async function readDefinition(
  file: string,
): Promise<{ definition: LocalDefinition } | { problems: DefinitionProblem[] }> {
  const fail = (field: string, message: string) => ({ problems: [{ file, field, message }] });
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return fail('(file)', `cannot read: ${(err as Error).message}`);
  }
  let value: unknown;
  if (/\.ya?ml$/i.test(file)) {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      return {
        problems: doc.errors.map((e) => ({
          file,
          field: '(yaml)',
          message: (e.message.split('\n')[0] ?? 'invalid YAML').replace(/:\s*$/, ''),
        })),
      };
    }
    value = doc.toJS() as unknown;
  } else {
    try {
      value = JSON.parse(text) as unknown;
    } catch (err) {
      return fail('(json)', (err as Error).message);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('(definition)', 'must be one pipeline definition, a JSON/YAML object');
  }
  const body = { ...(value as Record<string, unknown>) };
  // As the server does with the URL's name: a definition without one is named after its file.
  if (body.name === undefined) body.name = basename(file, extname(file));
  const parsed = pipelineDefinitionSchema.safeParse(body);
  if (!parsed.success) {
    return {
      problems: parsed.error.issues.map((i) => ({
        file,
        field: i.path.map(String).join('.') || '(definition)',
        message: i.message,
      })),
    };
  }
  return {
    definition: {
      file,
      name: parsed.data.name,
      body,
      normalized: JSON.parse(JSON.stringify(parsed.data)) as Record<string, unknown>,
    },
  };
}

export type PlanAction = 'create' | 'update' | 'unchanged' | 'server_only';

export interface PipelinePlan {
  name: string;
  action: PlanAction;
  file?: string;
  /** The deployed latest version the plan compared with (and apply's `If-Match`). */
  serverVersion?: number;
  changes: FieldChange[];
}

export interface Plan {
  pipelines: PipelinePlan[];
  summary: { create: number; update: number; unchanged: number; serverOnly: number };
}

/** Whether applying the plan would change anything (what `--detailed-exitcode` reports as 2). */
export const planHasChanges = (plan: Plan) => plan.summary.create + plan.summary.update > 0;

/** Reads each deployed definition the folder names and the list of all, and compares. */
export async function makePlan(ctx: AsCodeContext, definitions: LocalDefinition[]): Promise<Plan> {
  const listed = await call(ctx, 'GET', '/api/pipelines');
  if (listed.status !== 200 || !Array.isArray(listed.body)) throw httpError('GET', '/api/pipelines', listed);
  const deployed = new Map((listed.body as { name: string; version: number }[]).map((p) => [p.name, p]));
  const pipelines: PipelinePlan[] = [];
  for (const def of definitions) {
    if (!deployed.has(def.name)) {
      pipelines.push({ name: def.name, action: 'create', file: def.file, changes: [] });
      continue;
    }
    const path = `/api/pipelines/${encodeURIComponent(def.name)}`;
    const got = await call(ctx, 'GET', path);
    if (got.status === 404) {
      // Listed a moment ago, gone now: plan it as new; apply's If-None-Match keeps that honest.
      pipelines.push({ name: def.name, action: 'create', file: def.file, changes: [] });
      continue;
    }
    if (got.status !== 200) throw httpError('GET', path, got);
    const server = got.body as { version: number; definition: unknown };
    const changes = diffDefinitions(server.definition, def.normalized);
    pipelines.push({
      name: def.name,
      action: changes.length > 0 ? 'update' : 'unchanged',
      file: def.file,
      serverVersion: server.version,
      changes,
    });
  }
  const local = new Set(definitions.map((d) => d.name));
  for (const [name, p] of deployed) {
    if (!local.has(name))
      pipelines.push({ name, action: 'server_only', serverVersion: p.version, changes: [] });
  }
  pipelines.sort((a, b) => a.name.localeCompare(b.name));
  const count = (a: PlanAction) => pipelines.filter((p) => p.action === a).length;
  return {
    pipelines,
    summary: {
      create: count('create'),
      update: count('update'),
      unchanged: count('unchanged'),
      serverOnly: count('server_only'),
    },
  };
}

/** The plan as people read it: one block per pipeline, then a summary line. */
export function planLines(plan: Plan, dir: string): string[] {
  const lines: string[] = [];
  for (const p of plan.pipelines) {
    const from = p.file ? ` (${p.file})` : '';
    if (p.action === 'create') lines.push(`+ ${p.name}${from}: new pipeline`);
    else if (p.action === 'unchanged')
      lines.push(`= ${p.name}${from}: unchanged (version ${p.serverVersion})`);
    else if (p.action === 'server_only')
      lines.push(
        `? ${p.name}: on the server (version ${p.serverVersion}) but not in ${dir}; kept (apply never deletes)`,
      );
    else {
      lines.push(`~ ${p.name}${from}: version ${p.serverVersion} → ${(p.serverVersion ?? 0) + 1}`);
      for (const c of p.changes) lines.push(`    ${changeLine(c)}`);
    }
  }
  const s = plan.summary;
  lines.push(
    `Plan: ${s.create} to create, ${s.update} to change, ${s.unchanged} unchanged, ${s.serverOnly} only on the server.`,
  );
  return lines;
}

export function changeLine(c: FieldChange): string {
  if (c.kind === 'added') return `+ ${c.path}: ${shortJson(c.new)}`;
  if (c.kind === 'removed') return `- ${c.path}: ${shortJson(c.old)}`;
  return `~ ${c.path}: ${shortJson(c.old)} → ${shortJson(c.new)}`;
}

export interface ApplyResult {
  applied: { name: string; action: 'create' | 'update'; version: number; warnings?: unknown[] }[];
  failed?: { name: string; status: number; code?: string; message: string };
  notAttempted: string[];
}

/**
 * Applies a plan in its order, each write conditional on what the plan saw: `If-None-Match: *` for
 * a new pipeline, `If-Match: "N"` for a changed one. Stops at the first refusal.
 */
export async function applyPlan(
  ctx: AsCodeContext,
  plan: Plan,
  definitions: LocalDefinition[],
): Promise<ApplyResult> {
  const byName = new Map(definitions.map((d) => [d.name, d]));
  const todo = plan.pipelines.filter((p) => p.action === 'create' || p.action === 'update');
  const result: ApplyResult = { applied: [], notAttempted: [] };
  for (const [i, p] of todo.entries()) {
    const def = byName.get(p.name)!;
    const path = `/api/pipelines/${encodeURIComponent(p.name)}`;
    const condition: Record<string, string> =
      p.action === 'create' ? { 'if-none-match': '*' } : { 'if-match': `"${p.serverVersion}"` };
    const res = await call(ctx, 'PUT', path, JSON.stringify(def.body), condition);
    if (res.status === 201 || res.status === 200) {
      const b = res.body as { version: number; warnings?: unknown[] };
      result.applied.push({
        name: p.name,
        action: p.action as 'create' | 'update',
        version: b.version,
        ...(b.warnings ? { warnings: b.warnings } : {}),
      });
      continue;
    }
    const problem = res.body as { code?: string } | undefined;
    result.failed = {
      name: p.name,
      status: res.status,
      ...(typeof problem?.code === 'string' ? { code: problem.code } : {}),
      message:
        res.status === 412
          ? `changed on the server since the plan read version ${p.serverVersion ?? '(none)'}: ${problemText(res.body)}; run plan again`
          : problemText(res.body),
    };
    result.notAttempted = todo.slice(i + 1).map((t) => t.name);
    break;
  }
  return result;
}

export function applyLines(r: ApplyResult): string[] {
  const lines = r.applied.map(
    (a) => `✔ ${a.name}: ${a.action === 'create' ? 'created' : 'updated'}, now version ${a.version}`,
  );
  for (const a of r.applied)
    for (const w of (a.warnings ?? []) as { field?: string; message?: string }[])
      lines.push(`  ⚠ ${a.name} ${w.field ?? ''}: ${w.message ?? ''}`);
  if (r.failed) {
    lines.push(`✖ ${r.failed.name}: HTTP ${r.failed.status}: ${r.failed.message}`);
    lines.push(
      r.applied.length > 0
        ? `applied before the error: ${r.applied.map((a) => `${a.name} (version ${a.version})`).join(', ')}`
        : 'nothing was applied before the error',
    );
    if (r.notAttempted.length > 0) lines.push(`not attempted: ${r.notAttempted.join(', ')}`);
  } else if (r.applied.length === 0) lines.push('nothing to apply');
  return lines;
}

export type AsCodeCommand = 'validate' | 'plan' | 'apply';

/**
 * Runs one command over DIR and returns the exit code: validate 0 valid / 1 not; plan 0, or with
 * `detailedExitCode` 0 no change / 2 changes; apply 0 applied. Invalid definitions are 1 for all
 * three, with nothing sent to the server.
 */
export async function pipelinesAsCode(
  ctx: AsCodeContext,
  command: AsCodeCommand,
  dir: string,
  options: { detailedExitCode?: boolean } = {},
): Promise<number> {
  const { definitions, problems } = await readDefinitions(dir);
  if (problems.length > 0) {
    if (ctx.json) ctx.out(JSON.stringify({ valid: false, problems }, null, 2));
    else {
      for (const p of problems) ctx.out(`✖ ${problemLine(p)}`);
      ctx.out(
        `${problems.length} problem${problems.length === 1 ? '' : 's'} in ${dir}${command === 'validate' ? '' : '; nothing was sent to Sluice'}`,
      );
    }
    return 1;
  }
  if (command === 'validate') {
    if (ctx.json)
      ctx.out(
        JSON.stringify(
          { valid: true, definitions: definitions.map((d) => ({ file: d.file, name: d.name })) },
          null,
          2,
        ),
      );
    else {
      for (const d of definitions) ctx.out(`✔ ${d.file}: pipeline ${d.name}`);
      ctx.out(`${definitions.length} valid definition${definitions.length === 1 ? '' : 's'} in ${dir}`);
    }
    return 0;
  }
  const plan = await makePlan(ctx, definitions);
  if (command === 'plan') {
    if (ctx.json) ctx.out(JSON.stringify(plan, null, 2));
    else for (const l of planLines(plan, dir)) ctx.out(l);
    return options.detailedExitCode && planHasChanges(plan) ? 2 : 0;
  }
  if (!ctx.json) for (const l of planLines(plan, dir)) ctx.out(l);
  const result = await applyPlan(ctx, plan, definitions);
  if (ctx.json) ctx.out(JSON.stringify({ plan, ...result }, null, 2));
  else for (const l of applyLines(result)) ctx.out(l);
  return result.failed ? 1 : 0;
}

interface Answer {
  status: number;
  body: unknown;
}

async function call(
  ctx: AsCodeContext,
  method: string,
  path: string,
  body?: string,
  extra: Record<string, string> = {},
): Promise<Answer> {
  const headers: Record<string, string> = {
    accept: 'application/json',
    'x-sluice-client': 'cli',
    ...extra,
  };
  if (ctx.key) headers['x-functions-key'] = ctx.key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(new URL(path, ctx.url), { method, headers, body });
  } catch (err) {
    throw new Error(`cannot reach Sluice at ${ctx.url} (${(err as Error).message}); is it running?`, {
      cause: err,
    });
  }
  const text = await res.text();
  try {
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  } catch {
    return { status: res.status, body: text };
  }
}

/** A problem response in one line: its code and detail, or each field's problem. */
function problemText(body: unknown): string {
  if (typeof body !== 'object' || body === null) return String(body ?? '');
  const p = body as { code?: string; detail?: string; errors?: { field: string; message: string }[] };
  if (Array.isArray(p.errors) && p.errors.length > 1)
    return `${p.code ?? ''} ${p.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`.trim();
  return `${p.code ?? ''} ${p.detail ?? JSON.stringify(body)}`.trim();
}

const httpError = (method: string, path: string, a: Answer) =>
  new Error(`${method} ${path} failed: HTTP ${a.status}: ${problemText(a.body)}`);
