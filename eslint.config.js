// ESLint 9 flat config: `pnpm lint`. typescript-eslint's type-aware rules (types from
// tsconfig.json) are here mainly for no-floating-promises and no-misused-promises: a dropped
// promise in socket code is a hang or an unhandled rejection. `void p` marks a promise left
// unawaited on purpose.
import js from '@eslint/js'
import { defineConfig } from 'eslint/config'
import tseslint from 'typescript-eslint'

// A relative specifier that climbs into packages/ or into another package's src or node_modules.
const intoPackages = /^(\.\.\/)+((packages\/)?(cli|coordinator|core|worker)\/(src|node_modules)|packages\/)/.source
const byName = 'Import the package by name (@ringtrain/...), not by a relative path into packages/.'

export default defineConfig(
  { ignores: ['**/node_modules/', 'out/', 'runs/', 'tmp/'] }, // as .gitignore
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A package is reached by its name (@ringtrain/core, or its warning subpath
      // unstable-internals-do-not-import), never by a relative path into another package:
      // such a path skips the package's declared dependencies and its curated index.ts.
      // no-restricted-syntax covers import(), which no-restricted-imports does not see.
      'no-restricted-imports': ['error', { patterns: [{ regex: intoPackages, message: byName }] }],
      'no-restricted-syntax': ['error', { selector: `ImportExpression > Literal[value=/${intoPackages}/]`, message: byName }],
      // Error messages print the offending value whatever its type (docs/style.md, "Errors").
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      // `async` without `await` is deliberate: a throw becomes a rejection, as callers of a Promise API expect.
      '@typescript-eslint/require-await': 'off',
      // Casts such as `as tf.Scalar` say what a tfjs call returns; the reader needs them, the compiler not.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // `BackendName | string` keeps the known names in editors' completions.
      '@typescript-eslint/no-redundant-type-constituents': 'off',
      // A caught value is rethrown (or rejected) as it came, whatever it is.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      // `_name` marks a parameter a signature needs, or a property a rest pattern leaves out.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Tests read JSON.parse results and caught errors as `any` and let expect() check them.
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  // Plain JavaScript (task fixtures, the module hook) is outside tsconfig.json: no types to check with.
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
)
