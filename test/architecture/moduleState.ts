import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** A module-level binding that can change after the module loaded: process-wide state. */
export interface ModuleState {
  /** Repository-relative path with forward slashes. */
  file: string;
  name: string;
  line: number;
  why: string;
}

/** Constructors whose instances hold no state worth the name (encoders, patterns). */
const STATELESS = new Set(['TextEncoder', 'TextDecoder', 'RegExp']);
/** Collections: state only when the module writes to them. */
const COLLECTIONS = new Set(['Map', 'Set', 'WeakMap', 'WeakSet', 'Array']);

function listTs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f));
}

/**
 * Finds the module-level mutable state of the `.ts` files under `dir`: `let`/`var` bindings, an
 * instance of a class built at load time, and a Map/Set/array the module itself writes to. Constant
 * lookup tables (a `Set` of words nobody adds to) are not state.
 */
export function findModuleState(root: string, dir: string): ModuleState[] {
  const found: ModuleState[] = [];
  for (const abs of listTs(path.join(root, dir))) {
    const file = path.relative(root, abs).split(path.sep).join('/');
    const text = readFileSync(abs, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
    for (const statement of source.statements) {
      if (!ts.isVariableStatement(statement)) continue;
      const list = statement.declarationList;
      const mutable = (list.flags & (ts.NodeFlags.Const | ts.NodeFlags.Using)) === 0;
      for (const decl of list.declarations) {
        if (!ts.isIdentifier(decl.name)) continue;
        const name = decl.name.text;
        const line = source.getLineAndCharacterOfPosition(decl.getStart(source)).line + 1;
        if (mutable) {
          found.push({ file, name, line, why: 'a module-level let/var' });
          continue;
        }
        const init = decl.initializer;
        let ctor: string | undefined;
        if (init && ts.isNewExpression(init)) ctor = init.expression.getText(source);
        else if (init && ts.isArrayLiteralExpression(init)) ctor = 'Array';
        if (!ctor || STATELESS.has(ctor)) continue;
        if (COLLECTIONS.has(ctor)) {
          const writes = new RegExp(
            `\\b${name}\\s*\\.\\s*(set|add|delete|clear|push|pop|shift|unshift|splice)\\s*\\(`,
          );
          if (writes.test(text)) found.push({ file, name, line, why: `a ${ctor} the module writes to` });
          continue;
        }
        found.push({ file, name, line, why: `a ${ctor} built when the module loads` });
      }
    }
  }
  return found.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}
