/**
 * The lint that keeps the shape (eslint.config.mjs, LAYERS): the layer rules on
 * relative imports too. Each case lints a line of code as if it sat at the given path;
 * the real tree passing is `npm test`'s `eslint .`. Unit tier.
 */
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

async function problems(filePath: string, code: string): Promise<string[]> {
  // eslint.config.mjs is ESM; vitest loads it as such.
  const { LAYERS } = (await import('../../eslint.config.mjs')) as { LAYERS: object[] };
  const eslint = new ESLint({
    overrideConfigFile: true,
    overrideConfig: [
      { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } },
      ...LAYERS,
    ],
  });
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.map((m) => m.message);
}

describe('layer rules on relative imports', () => {
  it.each([
    [
      'shared/judge/x.ts',
      "import { a } from '../../adapters/storage/blob-store';",
      /nothing outside shared/,
    ],
    [
      'shared/judge/x.ts',
      "import type { D } from '../../functions/lib/deps';",
      /nothing outside shared/,
    ],
    ['shared/judge/x.ts', "import { main } from '../../cli/main';", /nothing outside shared/],
    ['shared/judge/x.ts', "import { readFile } from 'node:fs/promises';", /no I\/O or SDK/],
    ['shared/judge/x.ts', "import { parse } from 'yaml';", /nothing but zod/],
    ['adapters/storage/x.ts', "import { d } from '../../functions/lib/deps';", /neither functions/],
    ['adapters/judge-credential.ts', "import { main } from '../cli/main';", /neither functions/],
    ['functions/fan-in.ts', "import { x } from './judge-batch';", /another trigger/],
    ['functions/fan-in.ts', "import { main } from '../cli/main';", /do not import cli/],
    ['functions/lib/wave-ops.ts', "import { x } from '../judge-batch';", /does not import one/],
  ])('%s: %s is refused', async (path, code, why) => {
    const found = await problems(path, code);
    expect(
      found.some((m) => why.test(m)),
      found.join('\n'),
    ).toBe(true);
  });

  it.each([
    ['shared/judge/x.ts', "import { z } from 'zod';"],
    ['shared/judge/x.ts', "import { PermanentError } from '../errors';"],
    ['shared/judge/x.ts', "import type { Row } from '../contracts/rows';"],
    ['adapters/storage/x.ts', "import { x } from '../../shared/build/spec';"],
    ['adapters/storage/x.ts', "import { BlobClient } from '@azure/storage-blob';"],
    ['functions/fan-in.ts', "import { x } from './lib/build-ops';"],
    ['functions/fan-in.ts', "import { x } from '../adapters/storage/blob-store';"],
    ['functions/index.ts', "import { createFanIn } from './fan-in';"],
    ['functions/lib/wave-ops.ts', "import { x } from './shards';"],
    ['functions/lib/wave-ops.ts', "import { x } from '../../shared/waves/planner';"],
    ['cli/main.ts', "import { createFanIn } from '../functions/fan-in';"],
  ])('%s: %s is allowed', async (path, code) => {
    expect(await problems(path, code)).toEqual([]);
  });
});
