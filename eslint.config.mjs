// One linter: typescript-eslint, type-checked. The core (shared/) may not import
// I/O modules or cloud SDKs: the same rule Temporal uses for its workflow code.
import tseslint from 'typescript-eslint';

const IO_MODULES = [
  'node:fs',
  'node:fs/promises',
  'fs',
  'fs/promises',
  'node:net',
  'node:http',
  'node:https',
  'node:child_process',
  'node:crypto',
  'node:zlib',
  'openai',
  'azure-kusto-data',
  '@azure/*',
  'azurite',
];

/** A relative import that climbs into one of the given top-level folders. */
const OUTSIDE = (...dirs) => `^(\\.\\./)+(${dirs.join('|')})(/|$)`;

/** The layers, on relative imports too: cli → functions → adapters → shared. */
export const LAYERS = [
  {
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: IO_MODULES,
              message: 'shared/ is the pure core: no I/O or SDK imports (put it in adapters/).',
            },
            {
              regex: '^(?!zod$)[^.]',
              message: 'shared/ is the pure core: it imports nothing but zod and itself.',
            },
            {
              regex: OUTSIDE('adapters', 'functions', 'cli', 'test', 'bench', 'bin', 'infra'),
              message:
                'shared/ imports nothing outside shared/ (the core knows no layer above it).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['adapters/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: OUTSIDE('functions', 'cli', 'test'),
              message: 'adapters/ import neither functions/ nor cli/ (they serve both).',
            },
          ],
        },
      ],
    },
  },
  {
    // A trigger parses, calls the core and writes: what triggers share lives in
    // functions/lib/, never in another trigger. index.ts and registry.ts list them all.
    files: ['functions/*.ts'],
    ignores: ['functions/index.ts', 'functions/registry.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\./(?!lib/)',
              message:
                'a trigger does not import another trigger: move what both need to functions/lib/.',
            },
            { regex: OUTSIDE('cli', 'test'), message: 'functions/ do not import cli/.' },
          ],
        },
      ],
    },
  },
  {
    files: ['functions/index.ts', 'functions/registry.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ regex: OUTSIDE('cli', 'test'), message: 'functions/ do not import cli/.' }],
        },
      ],
    },
  },
  {
    files: ['functions/lib/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: OUTSIDE('cli', 'test'), message: 'functions/ do not import cli/.' },
            {
              regex: '^\\.\\./(?!\\.\\./)',
              message: 'functions/lib/ serves the triggers; it does not import one.',
            },
          ],
        },
      ],
    },
  },
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'out/**',
      '.bench/**',
      'bin/**',
      'coverage/**',
      '**/*.mjs',
      '**/*.cjs',
      '**/*.js',
      'vitest.config.ts',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
    },
  },
  ...LAYERS,
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
