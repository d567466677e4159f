/**
 * Three test tiers (test/README.md), each runnable alone with `npm run test:<tier>`:
 * - unit: pure and in-process, no Azurite, no child process, no build needed;
 * - integration: against the real Azurite the global setup starts;
 * - e2e: the compiled CLI or runner in child processes (kill, faults, serve), a build
 *   of dist/ first; the browser test has its own config (vitest.browser.config.mjs).
 * A file not listed under integration or e2e is a unit test. Only the integration and
 * e2e tiers get the Azurite global setup (one Azurite shared by both in one run).
 */
import { defineConfig } from 'vitest/config';

const AZURITE = ['test/support/azurite.global.ts'];

export const INTEGRATION = [
  'test/functions/failing-judge.test.ts',
  'test/functions/http.test.ts',
  'test/functions/llm-judge.test.ts',
  'test/functions/pipeline.test.ts',
  'test/functions/redelivery.test.ts',
  'test/functions/scheduled.test.ts',
  'test/functions/waves.test.ts',
  'test/judge/batch-and-cache.test.ts',
  'test/report/logging.test.ts',
  'test/runner/local-host.test.ts',
  'test/source/file-source.test.ts',
  'test/source/functions-kusto.test.ts',
  'test/source/settings.test.ts',
  'test/support/azurite.test.ts',
  'test/trust/concurrency.test.ts',
  'test/trust/deep-rows.test.ts',
  'test/trust/http.test.ts',
  'test/trust/limits.test.ts',
  'test/trust/planted-build.test.ts',
  'test/trust/source-rows.test.ts',
  'test/waves/run.test.ts',
];

export const E2E = [
  'test/cli/balance-cli.test.ts',
  'test/cli/kusto-run.test.ts',
  'test/cli/outputs.test.ts',
  'test/cli/serve.test.ts',
  'test/judge/run-judge.test.ts',
  'test/memory/spill.test.ts',
  'test/runner/input.test.ts',
  'test/runner/kill.test.ts',
  'test/support/azurite-orphan.test.ts',
  'test/support/azurite-watchdog.test.ts',
  'test/trust/faults.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...INTEGRATION, ...E2E] },
      },
      {
        extends: true,
        test: { name: 'integration', include: INTEGRATION, globalSetup: AZURITE },
      },
      { extends: true, test: { name: 'e2e', include: E2E, globalSetup: AZURITE } },
    ],
  },
});
