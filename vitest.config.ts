/**
 * Three test tiers (test/README.md), each runnable alone with `npm run test:<tier>`:
 * - unit: pure and in-process, no Azurite, no child process, no build needed;
 * - integration: against the real Azurite the global setup starts, and the few files
 *   that make whole builds in process (thousands of conversations through the CLI's
 *   run or demo), too heavy for a unit tier that runs in well under a minute;
 * - e2e: the compiled CLI or runner in child processes (kill, faults, serve), a build
 *   of dist/ first; the browser test has its own config (vitest.browser.config.mjs).
 * A file listed under neither is classified by what it uses (unlisted() below). Only the
 * integration and e2e tiers get the Azurite global setup (one Azurite shared by both in
 * one run).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

const AZURITE = ['test/support/azurite.global.ts'];

export const INTEGRATION = [
  // Whole in-process builds, no Azurite: heavy, not pure.
  'test/dataset/dataset-formats.test.ts',
  'test/probe/evaluate.test.ts',
  'test/report/waves.test.ts',
  // Against Azurite.
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
  'test/cli/line-limits.test.ts',
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

/**
 * A file the lists above do not name is classified by what it uses, so a new test that
 * needs Azurite never lands in the unit tier (where no Azurite runs): the compiled CLI
 * or a child process → e2e; Azurite (`inject`, the functions harness's Azurite helpers)
 * → integration; else unit.
 */
function unlisted(): { integration: string[]; e2e: string[] } {
  const named = new Set([...INTEGRATION, ...E2E]);
  const out = { integration: [] as string[], e2e: [] as string[] };
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.test.ts') && !named.has(path)) {
        const text = readFileSync(path, 'utf8');
        if (/\bspawn\(|\bexecFile|\bfork\(|bin\/sft-balancer|runLocal\(/.test(text))
          out.e2e.push(path);
        else if (/\binject\(|\b(runBuild|testDeps)\b/.test(text)) out.integration.push(path);
      }
    }
  };
  walk('test');
  return out;
}
const FOUND = unlisted();

/**
 * Test files run at once: vitest's default is one less than the cores, which on CI's
 * 2-core machine is one file at a time, the cores half idle while a file waits on a
 * child process, Azurite or a timer. Two at least; more on a larger machine.
 */
const WORKERS = Math.max(2, availableParallelism() - 1);

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: WORKERS,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [...INTEGRATION, ...E2E, ...FOUND.integration, ...FOUND.e2e],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: [...INTEGRATION, ...FOUND.integration],
          globalSetup: AZURITE,
        },
      },
      {
        extends: true,
        test: { name: 'e2e', include: [...E2E, ...FOUND.e2e], globalSetup: AZURITE },
      },
    ],
  },
});
