// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

// The lib modules orchestrators may reach: the same list the import-graph test proves closed
// (test/architecture/layers.test.ts), so a non-deterministic call in a pure helper is caught too.
const pureModules = JSON.parse(
  readFileSync(new URL('./test/architecture/pure-modules.json', import.meta.url), 'utf8'),
).modules.map((m) => (m.endsWith('/') ? `${m}**/*.ts` : m));

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.sluice/**',
      'coverage/**',
      'test/fixtures/**',
      'test/architecture/fixtures/**',
      '**/*.js',
      '**/*.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Orchestrators are replayed: anything non-deterministic breaks replay on Azure. The same holds
    // for every lib module they may reach.
    files: ['orchestrators/**/*.ts', ...pureModules],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: 'Orchestrators must not do I/O: call an activity.',
          })),
          patterns: [{ group: ['@azure/*'], message: 'Orchestrators must not do I/O: call an activity.' }],
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='Date'][property.name='now']",
          message: 'Use context.df.currentUtcDateTime.',
        },
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'Use context.df.currentUtcDateTime.',
        },
        {
          selector: "MemberExpression[object.name='Math'][property.name='random']",
          message: 'Use context.df.newGuid.',
        },
        {
          selector: "MemberExpression[object.name='process']",
          message: 'No process access in orchestrators (env, timers).',
        },
        {
          selector: 'CallExpression[callee.name=/^(setTimeout|setInterval|setImmediate|fetch)$/]',
          message: 'Use durable timers and activities.',
        },
        { selector: "CallExpression[callee.object.name='crypto']", message: 'Use context.df.newGuid.' },
        {
          selector: "MemberExpression[object.name='performance']",
          message: 'Use context.df.currentUtcDateTime.',
        },
        {
          selector: "CallExpression[callee.name='require']",
          message: 'Import statically: the import-graph test checks what orchestrators reach.',
        },
        {
          selector: 'ImportExpression',
          message: 'Import statically: the import-graph test checks what orchestrators reach.',
        },
      ],
    },
  },
  prettier,
);
