// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.sluice/**', 'coverage/**', 'test/fixtures/**', '**/*.js', '**/*.mjs'] },
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
    // Orchestrators are replayed: anything non-deterministic breaks replay on Azure.
    files: ['orchestrators/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: nodeBuiltins.map((name) => ({ name, message: 'Orchestrators must not do I/O: call an activity.' })) },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='Date'][property.name='now']", message: 'Use context.df.currentUtcDateTime.' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Use context.df.currentUtcDateTime.' },
        { selector: "MemberExpression[object.name='Math'][property.name='random']", message: 'Use context.df.newGuid.' },
        { selector: "MemberExpression[object.name='process']", message: 'No process access in orchestrators (env, timers).' },
        { selector: "CallExpression[callee.name=/^(setTimeout|setInterval|setImmediate|fetch)$/]", message: 'Use durable timers and activities.' },
        { selector: "CallExpression[callee.object.name='crypto']", message: 'Use context.df.newGuid.' },
      ],
    },
  },
  prettier,
);
