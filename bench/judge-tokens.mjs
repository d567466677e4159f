// Judge prompt cost: prompt tokens per judged sample at K = 1 versus larger K, counted
// with a real tokenizer (gpt-tokenizer, o200k_base: the gpt-4o / gpt-4.1 / o-series family)
// over the exact prompts the judge sends (shared/judge/rubric.ts), on generated telemetry.
// Run after `npm run build`:  node bench/judge-tokens.mjs [--conversations N] [--json FILE]
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { countTokens, encodeChat } from 'gpt-tokenizer/model/gpt-4o';

const require = createRequire(import.meta.url);
const {
  buildJudgePrompt,
  makeDelimiter,
  sampleContent,
  VERDICT_JSON_SCHEMA,
  RUBRIC,
} = require('../dist/shared/judge/rubric.js');
const { generateTelemetry } = require('../dist/shared/source/generate.js');
const { ConversationAssembler } = require('../dist/shared/samples/assemble.js');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const conversations = Number(arg('conversations', '2000'));
const jsonOut = arg('json', null);
const DEFAULT_K = 20;
const KS = [1, 5, 10, DEFAULT_K, 40];
// gpt-4o-mini list prices per million tokens (input, cached input, output); only ratios matter here.
const PRICE = { input: 0.15, cached: 0.075, output: 0.6 };
// Prompt caching applies to the identical leading tokens once they pass 1,024 (in 128-token steps).
const cacheablePrefix = (systemTokens) =>
  systemTokens >= 1024 ? Math.floor(systemTokens / 128) * 128 : 0;

const assembler = new ConversationAssembler();
for (const t of generateTelemetry({ conversations, seed: 1, incompleteShare: 0 })) assembler.add(t);

// The structured-output schema is added to the prompt by the provider: counted as its JSON.
const schemaTokens = countTokens(JSON.stringify(VERDICT_JSON_SCHEMA.schema));
const rubricTokens = encodeChat([{ role: 'system', content: RUBRIC }]).length;
const hex = (i) => (0x1234567890abn + BigInt(i)).toString(16).padStart(16, '0');
const verdictTokens = (k) =>
  countTokens(
    JSON.stringify({
      verdicts: Array.from({ length: k }, (_, i) => ({
        id: `s${i + 1}`,
        label: i % 2,
        rationale: 'single mechanical rename in one file, no design decision',
      })),
    }),
  );

const results = {};
// Synthetic messages are short; real ones are often longer. "session-long" repeats each
// first-turn message to at least 1,600 characters (~400 tokens) to show that case too.
const lengthen = (c) => {
  let m = c.message;
  while (m.length < 1600) m += ` ${c.message}`;
  return { ...c, message: m };
};
for (const pipeline of ['session', 'conversation', 'session-long']) {
  const { samples } = assembler.samples(pipeline === 'session-long' ? 'session' : pipeline);
  const contents = samples
    .map(sampleContent)
    .map((c) => (pipeline === 'session-long' ? lengthen(c) : c));
  const dataTokens =
    contents.reduce((n, c) => n + countTokens(JSON.stringify(c)), 0) / contents.length;
  results[pipeline] = {
    samples: samples.length,
    meanSampleTokens: +dataTokens.toFixed(1),
    byK: {},
  };
  for (const k of KS) {
    let prompt = 0;
    let cached = 0;
    let completion = 0;
    let requests = 0;
    for (let i = 0; i < contents.length; i += k) {
      const group = contents.slice(i, i + k);
      const p = buildJudgePrompt(group, makeDelimiter(hex(i)));
      const tokens =
        encodeChat([
          { role: 'system', content: p.system },
          { role: 'user', content: p.user },
        ]).length + schemaTokens;
      prompt += tokens;
      if (requests > 0) cached += cacheablePrefix(rubricTokens);
      completion += verdictTokens(group.length);
      requests++;
    }
    const n = contents.length;
    const cost =
      ((prompt - cached) * PRICE.input + cached * PRICE.cached + completion * PRICE.output) / 1e6;
    results[pipeline].byK[k] = {
      requests,
      requestsPerSample: +(requests / n).toFixed(4),
      promptTokensPerSample: +(prompt / n).toFixed(1),
      cachedPromptTokensPerSample: +(cached / n).toFixed(1),
      completionTokensPerSample: +(completion / n).toFixed(1),
      costPer1kSamplesUSD: +((cost / n) * 1000).toFixed(4),
    };
  }
  const one = results[pipeline].byK[1].promptTokensPerSample;
  const def = results[pipeline].byK[DEFAULT_K].promptTokensPerSample;
  results[pipeline].defaultK = DEFAULT_K;
  results[pipeline].defaultVsK1 = +(def / one).toFixed(4);
}

const out = {
  tokenizer: 'gpt-tokenizer o200k_base (gpt-4o chat format)',
  rubricTokens,
  schemaTokens,
  conversations,
  results,
  target: 'default K uses <= 40% of the K = 1 prompt tokens per sample',
};
for (const [pipeline, r] of Object.entries(results)) {
  process.stdout.write(
    `\n${pipeline}: ${r.samples} samples, ~${r.meanSampleTokens} tokens of sample JSON each (rubric ${rubricTokens} tokens, schema ${schemaTokens})\n`,
  );
  process.stdout.write(
    '     K  requests/sample  prompt tok/sample  cached/sample  completion/sample  $/1k samples (4o-mini)\n',
  );
  for (const [k, x] of Object.entries(r.byK)) {
    process.stdout.write(
      `${String(k).padStart(6)}  ${String(x.requestsPerSample).padStart(15)}  ${String(x.promptTokensPerSample).padStart(17)}  ` +
        `${String(x.cachedPromptTokensPerSample).padStart(13)}  ${String(x.completionTokensPerSample).padStart(17)}  ${String(x.costPer1kSamplesUSD).padStart(10)}\n`,
    );
  }
  process.stdout.write(
    `  default K = ${r.defaultK}: ${(r.defaultVsK1 * 100).toFixed(1)}% of the K = 1 prompt tokens per sample ` +
      `(target <= 40%: ${r.defaultVsK1 <= 0.4 ? 'met' : 'NOT met'})\n`,
  );
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(out, null, 2) + '\n');
