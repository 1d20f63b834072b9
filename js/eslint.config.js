import js from '@eslint/js'
import globals from 'globals'

// Untrusted text (log lines, names, errors, outputs) must never be parsed as HTML.
const noHtmlSinks = [
  {
    selector: "AssignmentExpression > MemberExpression.left[property.name=/^(innerHTML|outerHTML|srcdoc)$/]",
    message: 'Build DOM with createElement/textContent; never assign HTML.',
  },
  {
    selector: "CallExpression[callee.property.name=/^(insertAdjacentHTML|write|writeln|createContextualFragment|setHTMLUnsafe)$/]",
    message: 'Build DOM with createElement/textContent; never parse HTML.',
  },
  { selector: "CallExpression[callee.name='eval'], NewExpression[callee.name='Function']", message: 'No eval.' },
]

export default [
  { ignores: ['node_modules/', 'coverage/'] },
  js.configs.recommended,
  {
    files: ['src/**/*.js'],
    languageOptions: { ecmaVersion: 2020, sourceType: 'module', globals: globals.browser },
    rules: {
      'no-restricted-syntax': ['error', ...noHtmlSinks],
      'no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
      'prefer-const': 'error',
      'no-var': 'error',
    },
  },
  {
    files: ['test/**/*.js'],
    languageOptions: { sourceType: 'module', globals: { ...globals.browser, ...globals.node } },
    rules: { 'no-restricted-syntax': ['error', ...noHtmlSinks.slice(1)] },
  },
  {
    files: ['*.js', '*.mjs'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
]
