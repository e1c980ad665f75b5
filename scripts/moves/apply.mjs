#!/usr/bin/env node
/**
 * Applies the issue-14 file moves and identifier renames to whatever tree it runs in.
 *
 *   node scripts/moves/apply.mjs            apply, print what was done
 *   node scripts/moves/apply.mjs --dry-run  print the moves and rewrites it would make (not renames)
 *   node scripts/moves/apply.mjs --format   apply, then run prettier on every file it changed
 *                                           (longer import lines and names rewrap)
 *
 * It is written to run on a merged tree that other branches have changed since the table was
 * made, so it never relies on today's file contents:
 * - each move is `git mv`ed only when its source exists and its target does not (otherwise a
 *   warning, or silence when the move is already done);
 * - every relative module specifier (import, export, import type, `import()`, `require`,
 *   `jest.mock` and friends) in every .ts/.js/.mjs/.cjs file is resolved against the importing
 *   file's old location and re-relativized between the new locations of both files; a specifier
 *   that no longer resolves but names a moved file's old location is repaired too, so a second
 *   run (or a run after more code lands) finds nothing to do;
 * - repository paths of moved files written as text (`lib/training/worker.ts`, `dist/…/x.js`
 *   in strings, comments and docs) are rewritten; strings that only name a moved file's base
 *   name (path segments passed to `join`, for instance) are listed for a manual look;
 * - a new top-level folder (worker/) is added to tsconfig's `include`, or it would not be built;
 * - identifiers in the rename table are renamed in the files that declare them and in every file
 *   that imports them from there (identifiers only: strings, JSON fields and property keys of
 *   other objects keep their text).
 *
 * Plain Node ESM; the only dependency is the TypeScript compiler in node_modules (for parsing).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ts = require('typescript');

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DRY = process.argv.includes('--dry-run');
const FORMAT = process.argv.includes('--format');
/** Files this run changed, at their new locations. */
const touched = new Set();

/**
 * Old path → new path, relative to the repository root. Files only; the order does not matter.
 */
export const MOVES = [
  // lib/data: what every part shares stays at the top; the rest goes by concept.
  ['lib/data/column.ts', 'lib/data/table.ts'],
  // reading: bytes in (and out) of the formats Sluice reads and writes
  ['lib/data/ingest.ts', 'lib/data/reading/readDataset.ts'],
  ['lib/data/input.ts', 'lib/data/reading/input.ts'],
  ['lib/data/csv.ts', 'lib/data/reading/csv.ts'],
  ['lib/data/csvWrite.ts', 'lib/data/reading/csvWrite.ts'],
  ['lib/data/jsonl.ts', 'lib/data/reading/jsonl.ts'],
  ['lib/data/parquet.ts', 'lib/data/reading/parquet.ts'],
  ['lib/data/tableBuilder.ts', 'lib/data/reading/tableBuilder.ts'],
  ['lib/data/tee.ts', 'lib/data/reading/tee.ts'],
  ['lib/data/columnar.ts', 'lib/data/reading/columnar.ts'],
  ['lib/data/headerCheck.ts', 'lib/data/reading/headerCheck.ts'],
  // checking: the dataset contract applied to a table, and the report that says how it went
  ['lib/data/validate.ts', 'lib/data/checking/validateTable.ts'],
  ['lib/data/validation.ts', 'lib/data/checking/validateStored.ts'],
  ['lib/data/offThread.ts', 'lib/data/checking/offThread.ts'],
  ['lib/data/conform.ts', 'lib/data/checking/conform.ts'],
  ['lib/data/quality.ts', 'lib/data/checking/quality.ts'],
  ['lib/data/schemaDiff.ts', 'lib/data/checking/schemaDiff.ts'],
  ['lib/data/report.ts', 'lib/data/checking/report.ts'],
  ['lib/data/infer.ts', 'lib/data/checking/infer.ts'],
  ['lib/data/inferContract.ts', 'lib/data/checking/inferDatasetContract.ts'],
  // profiling: statistics of a table, drift against the reference and the reference itself
  ['lib/data/profile.ts', 'lib/data/profiling/profile.ts'],
  ['lib/data/drift.ts', 'lib/data/profiling/drift.ts'],
  ['lib/data/sort.ts', 'lib/data/profiling/sort.ts'],
  ['lib/data/reference.ts', 'lib/data/profiling/reference.ts'],
  ['lib/data/referenceProfile.ts', 'lib/data/profiling/referenceProfile.ts'],
  ['lib/data/referenceStore.ts', 'lib/data/profiling/referenceStore.ts'],
  // The training job is a separate process, not a library module.
  ['lib/training/worker.ts', 'worker/trainingJob.ts'],
  // One meaning per name: "model" is the ML model; the run document and the registry records
  // get their own names. The host's Table storage no longer shares a name with lib/data/table.ts.
  ['lib/runs/model.ts', 'lib/runs/document.ts'],
  ['test/unit/runs/model.test.ts', 'test/unit/runs/document.test.ts'],
  ['lib/registry/model.ts', 'lib/registry/records.ts'],
  ['lib/storage/table.ts', 'lib/storage/tableService.ts'],
  // A function file is named after the function it registers (the activity is validateDataset).
  ['functions/validateDataset.ts', 'functions/checkDataset.ts'],
  ['test/unit/data/validateEndpoint.test.ts', 'test/unit/data/checkDataset.test.ts'],
];

/**
 * Identifier renames: `from` → `to` in the files (new paths) that export it, and in every file
 * that imports it from one of them. Only bare "contract" names of the dataset contract: next to
 * lib/contracts (the Durable activity schemas) they read as if they were about those.
 */
export const RENAMES = [
  { from: 'parseContract', to: 'parseDatasetContract', in: ['lib/data/datasetContract.ts'] },
  { from: 'contractDigest', to: 'datasetContractDigest', in: ['lib/data/checking/report.ts'] },
  { from: 'inferContract', to: 'inferDatasetContract', in: ['lib/data/checking/inferDatasetContract.ts'] },
  { from: 'proposeContract', to: 'proposeDatasetContract', in: ['lib/data/checking/infer.ts'] },
  { from: 'ProposedContract', to: 'ProposedDatasetContract', in: ['lib/data/checking/infer.ts'] },
  { from: 'diffContracts', to: 'diffDatasetContracts', in: ['lib/data/checking/schemaDiff.ts'] },
];

// Folders never touched: dependencies, build output, and the foreign apps the devhost tests load.
const EXCLUDED = [
  /^node_modules\//,
  /^dist\//,
  /^\.git\//,
  /(^|\/)fixtures\//, // test apps and deliberately bad trees keep their own paths
  /^\.sluice\//,
  /^coverage\//,
];
const CODE = /\.(ts|mts|cts|js|mjs|cjs)$/;
const TEXT = /\.(ts|mts|cts|js|mjs|cjs|json|md|yml|yaml|bicep|sh)$|^\.ci\/run$|(^|\/)\.funcignore$/;
const NO_TEXT = new Set(['package-lock.json', 'scripts/moves/apply.mjs']);
const RESOLVE_EXT = ['', '.ts', '.tsx', '.mts', '.cts', '.d.ts', '.js', '.mjs', '.cjs', '.json'];
const MODULE_CALLS = new Set([
  'require',
  'require.resolve',
  'jest.mock',
  'jest.doMock',
  'jest.unmock',
  'jest.dontMock',
  'jest.requireActual',
  'jest.requireMock',
  'jest.createMockFromModule',
  'jest.setMock',
]);

const log = (...a) => console.log(...a);
const warnings = [];
const warn = (msg) => {
  warnings.push(msg);
  console.warn(`warning: ${msg}`);
};
const posix = (p) => p.split(path.sep).join('/');
const abs = (rel) => path.join(ROOT, rel);
const rel = (a) => posix(path.relative(ROOT, a));
const isFile = (a) => existsSync(a) && statSync(a).isFile();
const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' });

function repoFiles() {
  const out = git('ls-files', '-z', '--cached', '--others', '--exclude-standard');
  return [...new Set(out.split('\0').filter(Boolean))]
    .filter((f) => !EXCLUDED.some((re) => re.test(f)))
    .filter((f) => isFile(abs(f)))
    .sort();
}

// ---------------------------------------------------------------------------------------------
// 1. Which moves happen in this run, and the old → new map used to rewrite references.

/** Every table entry whose target exists or will exist (for repairing references). */
const moveMap = new Map(); // old abs → new abs
/** The moves performed by this run. */
const pending = [];
for (const [from, to] of MOVES) {
  const src = abs(from);
  const dst = abs(to);
  const srcThere = isFile(src);
  const dstThere = existsSync(dst);
  if (srcThere && !dstThere) {
    pending.push([from, to]);
    moveMap.set(src, dst);
  } else if (!srcThere && dstThere) {
    moveMap.set(src, dst); // done by an earlier run: still repair stale references to it
  } else if (srcThere && dstThere) {
    warn(`skip ${from} → ${to}: the target already exists`);
  } else {
    warn(`skip ${from} → ${to}: the source no longer exists`);
  }
}
/** Where a file is after this run. */
const newLocation = (a) => moveMap.get(a) ?? a;

// ---------------------------------------------------------------------------------------------
// 2. Module specifiers.

/** The file a relative specifier names, as seen from `fromDir` before the moves, or undefined. */
function resolveSpecifier(fromDir, spec) {
  const base = path.resolve(fromDir, spec);
  const candidates = [];
  for (const ext of RESOLVE_EXT) candidates.push(base + ext);
  // TypeScript's node16 resolution: `./x.js` names `./x.ts`.
  const m = /\.(m|c)?js$/.exec(base);
  if (m) {
    const stem = base.slice(0, -m[0].length);
    candidates.push(stem + `.${m[1] ?? ''}ts`);
  }
  for (const ext of ['.ts', '.js', '.mjs', '.cjs', '.json']) candidates.push(path.join(base, 'index' + ext));
  for (const c of candidates) {
    if (isFile(c) || moveMap.has(c)) return { file: c, base };
  }
  return undefined;
}

/** The specifier for `target` written from `fromFile`, keeping the style of `original`. */
function respecify(original, resolved, fromFileNew) {
  const targetNew = newLocation(resolved.file);
  // What the original named beyond its base (its extension, or /index): keep that suffix.
  const suffix = resolved.file.slice(resolved.base.length); // '', '.ts', '/index.ts', …
  let written = targetNew.slice(0, targetNew.length - suffix.length);
  // Cannot keep the style (`./dir` naming dir/index.ts, now moved elsewhere): name the file.
  if (!targetNew.endsWith(suffix)) written = targetNew.replace(/\.(ts|tsx)$/, '');
  if (
    resolved.file !== resolved.base &&
    original.match(/\.(m|c)?js$/) &&
    resolved.file.match(/\.(m|c)?ts$/)
  ) {
    // `./x.js` resolving to x.ts: keep the .js spelling on the new base
    written = targetNew.replace(/\.(m|c)?ts$/, (_, k) => `.${k ?? ''}js`);
  }
  let out = posix(path.relative(path.dirname(fromFileNew), written));
  if (!out.startsWith('.')) out = './' + out;
  return out;
}

function calleeName(expr) {
  if (ts.isIdentifier(expr)) return expr.text;
  if (ts.isPropertyAccessExpression(expr)) {
    const left = calleeName(expr.expression);
    return left ? `${left}.${expr.name.text}` : undefined;
  }
  return undefined;
}

/** Every module-specifier string literal in a source file. */
function specifierNodes(sf) {
  const found = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      if (ts.isStringLiteral(node.moduleSpecifier)) found.push(node.moduleSpecifier);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const e = node.moduleReference.expression;
      if (ts.isStringLiteral(e)) found.push(e);
    } else if (ts.isImportTypeNode(node)) {
      const a = node.argument;
      if (ts.isLiteralTypeNode(a) && ts.isStringLiteral(a.literal)) found.push(a.literal);
    } else if (ts.isCallExpression(node) && node.arguments.length > 0) {
      const first = node.arguments[0];
      const isModuleCall =
        node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        MODULE_CALLS.has(calleeName(node.expression) ?? '');
      if (isModuleCall && (ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first)))
        found.push(first);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function scriptKind(file) {
  if (/\.(ts|mts|cts)$/.test(file)) return ts.ScriptKind.TS;
  return ts.ScriptKind.JS;
}

const parse = (file, text) => ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, scriptKind(file));

// ---------------------------------------------------------------------------------------------
// 3. Paths written as text.

const pathForms = [];
for (const [oldAbs, newAbs] of moveMap) {
  const o = rel(oldAbs);
  const n = rel(newAbs);
  const oStem = o.replace(/\.(ts|js|mjs)$/, '');
  const nStem = n.replace(/\.(ts|js|mjs)$/, '');
  // `lib/data/column`, `lib/data/column.ts`, `dist/lib/data/column.js`: the stem, then an
  // optional extension, then no more name characters (so lib/data/column is not lib/data/columnar).
  const re = new RegExp(
    `(?<![\\w.-])${escapeRe(oStem)}(?![\\w-])(\\.(?:ts|js|d\\.ts|js\\.map))?(?![\\w-])`,
    'g',
  );
  pathForms.push({ re, nStem, base: path.basename(o), oldStem: path.basename(oStem), file: o });
}
function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
function rewritePaths(text, skip) {
  const edits = [];
  for (const f of pathForms) {
    f.re.lastIndex = 0;
    for (const m of text.matchAll(f.re)) {
      const start = m.index;
      const end = start + m[0].length;
      if (skip.some(([a, b]) => start < b && end > a)) continue;
      edits.push({ start, end, text: f.nStem + (m[1] ?? '') });
    }
  }
  return edits;
}

// ---------------------------------------------------------------------------------------------
// 4. Rewrite every file at its old location, then move.

function applyEdits(text, edits) {
  edits.sort((a, b) => b.start - a.start);
  let out = text;
  let last = Infinity;
  for (const e of edits) {
    if (e.end > last) continue; // overlapping: the later (outer) edit already covers it
    out = out.slice(0, e.start) + e.text + out.slice(e.end);
    last = e.start;
  }
  return out;
}

const files = repoFiles();
const changed = new Map(); // abs (old location) → new text
const manual = [];
let specifierCount = 0;
let pathCount = 0;

for (const f of files) {
  if (NO_TEXT.has(f)) continue;
  const fileAbs = abs(f);
  const text = readFileSync(fileAbs, 'utf8');
  const edits = [];
  const skip = [];
  if (CODE.test(f)) {
    const sf = parse(f, text);
    const fileNew = newLocation(fileAbs);
    for (const lit of specifierNodes(sf)) {
      const spec = lit.text;
      const start = lit.getStart(sf) + 1;
      const end = lit.getEnd() - 1;
      skip.push([start, end]);
      if (!spec.startsWith('.')) continue;
      const resolved = resolveSpecifier(path.dirname(fileAbs), spec);
      if (!resolved) continue;
      // Neither end moves: leave the text alone, whatever its spelling.
      if (newLocation(resolved.file) === resolved.file && fileNew === fileAbs) continue;
      const next = respecify(spec, resolved, fileNew);
      if (next !== spec) {
        edits.push({ start, end, text: next });
        specifierCount++;
      }
    }
    // Strings that name a moved file only by its base name: path segments, __dirname joins.
    const visit = (node) => {
      if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
        const s = node.text;
        const inSkip = skip.some(([a]) => a === node.getStart(sf) + 1);
        if (!inSkip) {
          for (const p of pathForms) {
            const stem = p.oldStem;
            if (s === p.base || s === `${stem}.js`) {
              const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
              manual.push(`${f}:${line + 1}: '${s}' may name ${p.file} (moved): check by hand`);
            }
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  if (TEXT.test(f)) {
    const pe = rewritePaths(text, skip);
    pathCount += pe.length;
    edits.push(...pe);
  }
  if (edits.length > 0) {
    const next = applyEdits(text, edits);
    if (next !== text) changed.set(fileAbs, next);
  }
}

for (const [fileAbs, text] of changed) {
  log(`rewrite ${rel(fileAbs)}`);
  touched.add(newLocation(fileAbs));
  if (!DRY) writeFileSync(fileAbs, text);
}
for (const [from, to] of pending) {
  log(`git mv ${from} ${to}`);
  if (!DRY) {
    mkdirSync(path.dirname(abs(to)), { recursive: true });
    git('mv', from, to);
  }
}

// ---------------------------------------------------------------------------------------------
// 4b. New top-level folders must be compiled: tsconfig's include lists each one that now exists.

const NEW_FOLDERS = [...new Set(MOVES.map(([, to]) => to.split('/')[0]))].filter(
  (top) => !['lib', 'test', 'functions'].includes(top),
);
{
  const tsconfig = abs('tsconfig.json');
  let text = readFileSync(tsconfig, 'utf8');
  for (const top of NEW_FOLDERS) {
    const m = /"include"\s*:\s*\[([^\]]*)\]/.exec(text);
    if (!m || !existsSync(abs(top)) || m[1].includes(`"${top}"`)) continue;
    // After "lib" when it is listed (the app's own code), else at the end.
    const list = m[1].includes('"lib"') ? m[1].replace('"lib"', `"lib", "${top}"`) : `${m[1]}, "${top}"`;
    text = text.slice(0, m.index) + m[0].replace(m[1], list) + text.slice(m.index + m[0].length);
    log(`tsconfig.json: include ${top}/`);
    if (!DRY) {
      writeFileSync(tsconfig, text);
      touched.add(tsconfig);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 5. Identifier renames, on the tree as it now is.

let renameCount = 0;
if (!DRY) {
  const after = repoFiles().filter((f) => CODE.test(f) && !NO_TEXT.has(f));
  const texts = new Map(after.map((f) => [abs(f), readFileSync(abs(f), 'utf8')]));
  for (const r of RENAMES) {
    // The listed files that export the name; when none does (another branch moved it), any lib/
    // file that exports it: the renamed functions belong to the dataset contract wherever it lives.
    let declaring = new Set(
      r.in.map(abs).filter((a) => texts.has(a) && exportsName(parse(a, texts.get(a)), r.from)),
    );
    if (declaring.size === 0) {
      const found = [...texts.keys()].filter(
        (a) =>
          rel(a).startsWith('lib/') &&
          texts.get(a).includes(r.from) &&
          exportsName(parse(a, texts.get(a)), r.from),
      );
      declaring = new Set(found);
      if (found.length > 0)
        log(`rename ${r.from}: not exported by ${r.in.join(', ')}; found in ${found.map(rel).join(', ')}`);
    }
    if (declaring.size === 0) {
      const done = [...texts.values()].some((t) => t.includes(r.to));
      if (!done) warn(`rename ${r.from} → ${r.to}: no lib/ file exports ${r.from}; nothing renamed`);
      continue;
    }
    // Files that re-export the name pass it on: their importers are renamed too.
    let grew = true;
    const importers = new Map(); // abs → how it imports the name (importMode)
    while (grew) {
      grew = false;
      for (const [fa, text] of texts) {
        if (!text.includes(r.from) || declaring.has(fa) || importers.has(fa)) continue;
        const sf = parse(fa, text);
        const mode = importMode(sf, fa, r.from, declaring);
        if (mode) {
          importers.set(fa, mode);
          if (mode.reexports) {
            declaring.add(fa);
            grew = true;
          }
        }
      }
    }
    for (const fa of new Set([...declaring, ...importers.keys()])) {
      const text = texts.get(fa);
      const sf = parse(fa, text);
      const mode = importers.get(fa);
      const edits = identifierEdits(sf, r, mode);
      if (edits.length === 0) continue;
      const next = applyEdits(text, edits);
      texts.set(fa, next);
      writeFileSync(fa, next);
      touched.add(fa);
      renameCount += edits.length;
      log(`rename ${r.from} → ${r.to} in ${rel(fa)} (${edits.length})`);
    }
  }
}

/** How a file imports `name` from one of `declaring`: every identifier, or only through aliases. */
function importMode(sf, fa, name, declaring) {
  let mode;
  for (const st of sf.statements) {
    const spec = (ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) && st.moduleSpecifier;
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) continue;
    const target = resolveSpecifier(path.dirname(fa), spec.text);
    if (!target || !declaring.has(target.file)) continue;
    mode ??= { local: false, aliases: [], namespaces: [], reexports: false };
    if (ts.isImportDeclaration(st)) {
      const b = st.importClause?.namedBindings;
      if (b && ts.isNamedImports(b)) {
        for (const el of b.elements) {
          if ((el.propertyName ?? el.name).text === name) {
            if (el.propertyName) mode.aliases.push(el);
            else mode.local = true;
          }
        }
      } else if (b && ts.isNamespaceImport(b)) {
        mode.namespaces.push(b.name.text);
      }
    } else if (st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) {
        if ((el.propertyName ?? el.name).text === name) {
          mode.aliases.push(el);
          if (!el.propertyName) mode.reexports = true;
        }
      }
    } else if (!st.exportClause) {
      mode.reexports = true; // export * from
    }
  }
  if (
    !mode ||
    (!mode.local && mode.aliases.length === 0 && mode.namespaces.length === 0 && !mode.reexports)
  ) {
    return undefined;
  }
  return mode;
}

function exportsName(sf, name) {
  let found = false;
  const hasExport = (n) => n.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  for (const st of sf.statements) {
    if (
      ts.isFunctionDeclaration(st) ||
      ts.isClassDeclaration(st) ||
      ts.isInterfaceDeclaration(st) ||
      ts.isTypeAliasDeclaration(st) ||
      ts.isEnumDeclaration(st)
    ) {
      if (hasExport(st) && st.name?.text === name) found = true;
    } else if (ts.isVariableStatement(st) && hasExport(st)) {
      for (const d of st.declarationList.declarations)
        if (ts.isIdentifier(d.name) && d.name.text === name) found = true;
    } else if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) if (el.name.text === name) found = true;
    }
  }
  return found;
}

/**
 * Edits renaming `r.from` in one file. In a declaring file or a plain importer: every identifier
 * with that text except property names of other objects (`x.from`, `{ from: … }` keys). A
 * shorthand property `{ from }` becomes `{ from: to }` so the object keeps its key. Through an
 * alias or a namespace, only the imported name and `ns.from` change.
 */
function identifierEdits(sf, r, mode) {
  const edits = [];
  const everywhere = !mode || mode.local || mode.reexports;
  const aliasNodes = new Set((mode?.aliases ?? []).map((el) => el.propertyName ?? el.name));
  const namespaces = new Set(mode?.namespaces ?? []);
  const visit = (node) => {
    if (ts.isIdentifier(node) && node.text === r.from) {
      const p = node.parent;
      const at = { start: node.getStart(sf), end: node.getEnd(), text: r.to };
      if (aliasNodes.has(node)) {
        edits.push(at);
      } else if (p && ts.isPropertyAccessExpression(p) && p.name === node) {
        if (ts.isIdentifier(p.expression) && namespaces.has(p.expression.text)) edits.push(at);
      } else if (p && ts.isQualifiedName(p) && p.right === node) {
        if (ts.isIdentifier(p.left) && namespaces.has(p.left.text)) edits.push(at);
      } else if (
        p &&
        (ts.isPropertyAssignment(p) ||
          ts.isPropertySignature(p) ||
          ts.isMethodDeclaration(p) ||
          ts.isPropertyDeclaration(p)) &&
        p.name === node
      ) {
        // a key of some object: not the binding
      } else if (p && ts.isShorthandPropertyAssignment(p)) {
        if (everywhere) edits.push({ ...at, text: `${r.from}: ${r.to}` });
      } else if (
        p &&
        (ts.isImportSpecifier(p) || ts.isExportSpecifier(p)) &&
        p.propertyName &&
        p.propertyName !== node
      ) {
        // `import { a as from }`: a local name that only looks the same
      } else if (everywhere) {
        edits.push(at);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edits;
}

// ---------------------------------------------------------------------------------------------

if (FORMAT && !DRY && touched.size > 0) {
  const prettier = path.join(ROOT, 'node_modules', 'prettier', 'bin', 'prettier.cjs');
  const list = [...touched].filter((a) => existsSync(a)).map(rel);
  execFileSync(process.execPath, [prettier, '--write', '--log-level', 'warn', ...list], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  log(`prettier --write on ${list.length} file(s)`);
}

log('');
log(
  `${DRY ? 'would move' : 'moved'} ${pending.length} file(s); rewrote ${specifierCount} module specifier(s) and ` +
    `${pathCount} path mention(s) in ${changed.size} file(s); renamed ${renameCount} identifier(s)`,
);
if (manual.length > 0) {
  log('\nNot rewritten (check by hand):');
  for (const m of [...new Set(manual)]) log(`  ${m}`);
}
if (warnings.length > 0) log(`\n${warnings.length} warning(s) above.`);
