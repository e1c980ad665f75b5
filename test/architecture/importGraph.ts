/**
 * A small import-graph checker for the layer rules of docs/architecture.md, built on the TypeScript
 * compiler's own pre-processor (`ts.preProcessFile`), so it sees `import`, `import type`,
 * `export … from`, `require()` and `import()` exactly as tsc does, without type-checking anything.
 *
 * The rules are data (see {@link LayerRules}); `layers.test.ts` runs them over the project and over a
 * deliberately bad fixture tree, so the checker itself is proven to catch what it promises.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import ts from 'typescript';

/** One import edge; `to` is a project file (posix path from the root) or a package specifier. */
export interface Edge {
  from: string;
  to: string;
  /** True when `to` is a package (or `node:*` builtin), not a project file. */
  external: boolean;
}

export interface ImportGraph {
  root: string;
  files: string[];
  edges: Map<string, Edge[]>;
}

const builtins = new Set(builtinModules);

/** `crypto` and `node:crypto` are the same module; `@azure/cosmos/x` is the package `@azure/cosmos`. */
export function packageOf(specifier: string): string {
  if (specifier.startsWith('node:')) return specifier;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
  return builtins.has(name) ? `node:${name}` : name;
}

function listTs(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    if (name === 'node_modules' || name === 'dist') continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listTs(full));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

const toPosix = (p: string): string => p.split(path.sep).join('/');

function resolveRelative(root: string, fromFile: string, specifier: string): string | undefined {
  const base = path.resolve(root, path.dirname(fromFile), specifier);
  // A `.js` specifier (ESM style, as dynamic import() needs under node16) names the `.ts` source.
  const source = base.endsWith('.js') ? `${base.slice(0, -3)}.ts` : undefined;
  for (const candidate of [base, `${base}.ts`, path.join(base, 'index.ts'), ...(source ? [source] : [])]) {
    try {
      if (statSync(candidate).isFile()) return toPosix(path.relative(root, candidate));
    } catch {
      // try the next candidate
    }
  }
  return undefined;
}

/** Reads every `.ts` file under `folders` of `root` and resolves its imports. */
export function buildImportGraph(root: string, folders: readonly string[]): ImportGraph {
  const files = folders
    .flatMap((folder) => listTs(path.join(root, folder)))
    .map((f) => toPosix(path.relative(root, f)));
  files.sort();
  const edges = new Map<string, Edge[]>();
  for (const file of files) {
    const text = readFileSync(path.join(root, file), 'utf8');
    const info = ts.preProcessFile(text, true, true);
    const out: Edge[] = [];
    const seen = new Set<string>();
    for (const { fileName: specifier } of info.importedFiles) {
      let edge: Edge;
      if (specifier.startsWith('.')) {
        const target = resolveRelative(root, file, specifier);
        if (!target) throw new Error(`${file}: cannot resolve import '${specifier}'`);
        edge = { from: file, to: target, external: false };
      } else {
        edge = { from: file, to: packageOf(specifier), external: true };
      }
      if (seen.has(edge.to)) continue;
      seen.add(edge.to);
      out.push(edge);
    }
    edges.set(file, out);
  }
  return { root, files, edges };
}

/** Every import cycle between project files, each as a path that starts and ends on the same file. */
export function findCycles(graph: ImportGraph): string[][] {
  // Tarjan's strongly connected components; one representative cycle per component.
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const internal = (file: string): string[] =>
    (graph.edges.get(file) ?? []).filter((e) => !e.external && graph.edges.has(e.to)).map((e) => e.to);

  const visit = (v: string): void => {
    indices.set(v, index);
    low.set(v, index);
    index += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of internal(v)) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indices.get(w)!));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || internal(v).includes(v)) components.push(component);
    }
  };
  for (const file of graph.files) if (!indices.has(file)) visit(file);

  return components.map((component) => {
    // Shortest path from the component's first file back to itself, staying inside the component.
    const members = new Set(component);
    const start = [...component].sort()[0]!;
    const previous = new Map<string, string>();
    const queue = [start];
    while (queue.length > 0) {
      const v = queue.shift()!;
      for (const w of internal(v)) {
        if (!members.has(w)) continue;
        if (w === start) {
          const cycle = [start];
          for (let at: string | undefined = v; at !== undefined && at !== start; at = previous.get(at))
            cycle.splice(1, 0, at);
          return [...cycle, start];
        }
        if (!previous.has(w)) {
          previous.set(w, v);
          queue.push(w);
        }
      }
    }
    return [...component, component[0]!];
  });
}

/** The declared architecture: which top-level folder may import which, and the order inside lib/. */
export interface LayerRules {
  /**
   * Top-level folder → the project folders its files may import (its own folder is always allowed),
   * or `'*'` for anything. Every folder that is scanned must have an entry.
   */
  folders: Record<string, readonly string[] | '*'>;
  /** Top-level folder → packages its files may not import (e.g. lib/ has no Functions imports). */
  forbiddenPackages: Record<string, readonly string[]>;
  /**
   * The modules of lib/, bottom to top; a module is a folder under lib/ or a file directly in it
   * (without `.ts`). A file may import files of its own module or of any module listed before it.
   */
  libOrder: readonly (readonly string[])[];
  /** Entry folder whose transitive imports must stay deterministic (the orchestrators). */
  pureRoot: string;
  /** Project files (or folders, ending in `/`) an orchestrator may reach. */
  pureModules: readonly string[];
  /** Packages an orchestrator may reach. */
  purePackages: readonly string[];
}

export interface Violation {
  rule: 'cycle' | 'folder' | 'package' | 'layer' | 'purity' | 'stale';
  /** The files involved, in order (an import chain or a cycle). */
  path: string[];
  message: string;
}

const topFolder = (file: string): string => file.split('/')[0]!;

/** `lib/data/reading/csv.ts` → `data`; `lib/config.ts` → `config`; `lib/resources.json` → `resources`. */
export function libModuleOf(file: string): string {
  const rest = file.split('/').slice(1);
  return rest.length > 1 ? rest[0]! : rest[0]!.replace(/\.[^.]+$/, '');
}

function isPure(file: string, rules: LayerRules): boolean {
  return rules.pureModules.some((m) => (m.endsWith('/') ? file.startsWith(m) : file === m));
}

/** Checks `graph` against `rules`; an empty list means the architecture holds. */
export function checkLayers(graph: ImportGraph, rules: LayerRules): Violation[] {
  const violations: Violation[] = [];
  for (const entry of rules.pureModules) {
    const exists = entry.endsWith('/')
      ? graph.files.some((f) => f.startsWith(entry))
      : graph.edges.has(entry);
    if (!exists) {
      violations.push({
        rule: 'stale',
        path: [entry],
        message: `${entry} is on the list of pure modules but does not exist: fix the entry`,
      });
    }
  }

  for (const cycle of findCycles(graph)) {
    violations.push({ rule: 'cycle', path: cycle, message: `import cycle: ${cycle.join(' → ')}` });
  }

  const rank = new Map<string, number>();
  rules.libOrder.forEach((tier, i) => tier.forEach((m) => rank.set(m, i)));

  for (const file of graph.files) {
    const from = topFolder(file);
    const allowed = rules.folders[from];
    if (allowed === undefined) {
      violations.push({
        rule: 'folder',
        path: [file],
        message: `${from}/ has no entry in the folder table: ${file}`,
      });
      continue;
    }
    for (const edge of graph.edges.get(file) ?? []) {
      if (edge.external) {
        if (rules.forbiddenPackages[from]?.includes(edge.to)) {
          violations.push({
            rule: 'package',
            path: [file, edge.to],
            message: `${from}/ may not import the package '${edge.to}': ${file} → ${edge.to}`,
          });
        }
        continue;
      }
      const to = topFolder(edge.to);
      if (to !== from) {
        if (allowed !== '*' && !allowed.includes(to)) {
          violations.push({
            rule: 'folder',
            path: [file, edge.to],
            message: `${from}/ may not import ${to}/: ${file} → ${edge.to}`,
          });
        }
        continue;
      }
      if (from !== 'lib') continue;
      const a = libModuleOf(file);
      const b = libModuleOf(edge.to);
      if (a === b) continue;
      const ra = rank.get(a);
      const rb = rank.get(b);
      if (ra === undefined || rb === undefined) {
        const missing = ra === undefined ? a : b;
        violations.push({
          rule: 'layer',
          path: [file, edge.to],
          message: `lib/${missing} has no place in the layer order: ${file} → ${edge.to}`,
        });
      } else if (rb >= ra) {
        violations.push({
          rule: 'layer',
          path: [file, edge.to],
          message: `${rb === ra ? 'sideways' : 'upward'} import, lib/${a} (tier ${ra}) → lib/${b} (tier ${rb}): ${file} → ${edge.to}`,
        });
      }
    }
  }

  // Everything reachable from the orchestrators, with the chain that reaches it.
  const entries = graph.files.filter((f) => topFolder(f) === rules.pureRoot);
  const previous = new Map<string, string | null>(entries.map((f) => [f, null]));
  const queue = [...entries];
  const reported = new Set<string>();
  const chainTo = (file: string): string[] => {
    const chain: string[] = [];
    for (let at: string | null | undefined = file; at; at = previous.get(at)) chain.unshift(at);
    return chain;
  };
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const edge of graph.edges.get(file) ?? []) {
      if (edge.external) {
        if (rules.purePackages.includes(edge.to) || reported.has(edge.to)) continue;
        reported.add(edge.to);
        const chain = [...chainTo(file), edge.to];
        violations.push({
          rule: 'purity',
          path: chain,
          message: `${rules.pureRoot}/ reaches package '${edge.to}': ${chain.join(' → ')}`,
        });
        continue;
      }
      if (previous.has(edge.to)) continue;
      previous.set(edge.to, file);
      queue.push(edge.to);
      if (topFolder(edge.to) !== rules.pureRoot && !isPure(edge.to, rules)) {
        const chain = chainTo(edge.to);
        violations.push({
          rule: 'purity',
          path: chain,
          message: `${rules.pureRoot}/ reaches ${edge.to}, which is not on the list of pure modules: ${chain.join(' → ')}`,
        });
      }
    }
  }

  return violations;
}

/** One line per violation, for a failure message that names every offending edge. */
export function formatViolations(violations: readonly Violation[]): string {
  return violations.map((v) => `[${v.rule}] ${v.message}`).join('\n');
}
