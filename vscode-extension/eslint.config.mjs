import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'out/', 'dist/', '*.vsix'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/extension.ts', 'src/editor/**'],
    rules: {
      // The pure modules are unit-tested under plain Node: they must not depend on the editor. The
      // code that drives VS Code is src/extension.ts and the feature modules under src/editor/.
      'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'keep vscode imports in src/extension.ts or src/editor/' }, { name: 'vscode-languageclient', message: 'keep client code in src/extension.ts or src/editor/' }] }],
    },
  },
  {
    files: ['scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
