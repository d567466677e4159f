import { defineConfig } from 'vitest/config';

// `npm run test:browser`: the report in headless Chromium (test/browser/*.spec.ts).
// Kept apart from `npm test` because it needs a Chromium binary.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.spec.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
