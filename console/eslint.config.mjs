import js from '@eslint/js';
import jsxA11y from 'eslint-plugin-jsx-a11y';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  jsxA11y.flatConfigs.strict,
  prettier,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    settings: {
      // Preact's JSX: `class` and `for` are its attribute names; the a11y rules read them as React's.
      'jsx-a11y': { attributes: { for: ['for', 'htmlFor'] } },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      // A form control inside its <label>, or named by `for`: both are labels.
      'jsx-a11y/label-has-associated-control': ['error', { assert: 'either', controlComponents: ['Field'] }],
      'jsx-a11y/no-autofocus': 'error',
      // Scrollable text (outputs, JSON) is a named region a keyboard user can focus to scroll.
      'jsx-a11y/no-noninteractive-tabindex': ['error', { tags: [], roles: ['region'] }],
      // Players show what a task made: it has no caption track to give (subtitles, when made, are shown beside).
      'jsx-a11y/media-has-caption': 'off',
    },
  },
);
