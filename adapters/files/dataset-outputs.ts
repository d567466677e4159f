/**
 * The post-build step of every build (balance, run in-process, the Functions fan-in):
 * the formats a config asks for (`formats`: chat, classifier, parquet) and the dataset
 * card README.md, written beside the split files by writeDatasetFormats
 * (adapters/files/dataset-formats.ts). The CLI calls writeBuildFormats on its staging
 * directory; the fan-in calls publishBuildFormats, which writes the split texts to a
 * private temp folder, runs the same step and uploads what it wrote: the same bytes
 * either way.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BalanceConfig } from '../../shared/contracts/config';
import {
  DEFAULT_CHAT_MAX_TOKENS,
  DEFAULT_LABEL_WORDS,
  DEFAULT_LICENSE,
  defaultSystemPrompt,
  parseFormats,
} from '../../shared/dataset/index';
import {
  DatasetFormatsError,
  writeDatasetFormats,
  type DatasetFormatsResult,
} from './dataset-formats';
import type { FileDigest } from './output';

/** What the manifest says about the formats: `manifest.formats`. */
export interface FormatsSection {
  formats: string[];
  files: string[];
  chat: DatasetFormatsResult['chat'];
  failed: { format: string; message: string }[];
  /** The dataset settings the files were written with (defaults filled in). */
  settings: FormatSettings;
}

/** The dataset settings in effect: the config's, else the defaults. */
export interface FormatSettings {
  systemPrompt: string;
  labelWords: [string, string];
  chatMaxTokens: number;
  license: string;
}

/** The config's dataset settings with the defaults filled in. */
export function formatSettingsOf(config: BalanceConfig): FormatSettings {
  const labelWords: [string, string] = config.labelWords
    ? [...config.labelWords]
    : [...DEFAULT_LABEL_WORDS];
  return {
    systemPrompt: config.systemPrompt ?? defaultSystemPrompt(labelWords),
    labelWords,
    chatMaxTokens: config.chatMaxTokens ?? DEFAULT_CHAT_MAX_TOKENS,
    license: config.license ?? DEFAULT_LICENSE,
  };
}

export interface BuildFormats {
  /** Files written, by path relative to the dataset folder: for `manifest.outputs`. */
  outputs: Record<string, FileDigest>;
  section: FormatsSection;
}

/**
 * Writes the config's formats and the card beside DIR's split files; null when the
 * config asks for none. A format that cannot be written is dropped (its files removed)
 * and named in `section.failed`; the others and the record stay.
 */
export async function writeBuildFormats(
  dir: string,
  manifest: Record<string, unknown>,
  config: BalanceConfig,
): Promise<BuildFormats | null> {
  if (config.formats === undefined) return null;
  const formats = parseFormats(config.formats, 'formats');
  const settings = formatSettingsOf(config);
  let result: DatasetFormatsResult;
  try {
    result = await writeDatasetFormats(dir, {
      formats,
      manifest,
      chat: {
        systemPrompt: settings.systemPrompt,
        labelWords: settings.labelWords,
        maxTokens: settings.chatMaxTokens,
      },
      license: settings.license,
    });
  } catch (err) {
    if (!(err instanceof DatasetFormatsError)) throw err;
    result = err.result;
  }
  return {
    outputs: result.files,
    section: {
      formats,
      files: Object.keys(result.files).sort(),
      chat: result.chat,
      failed: result.failed,
      settings,
    },
  };
}

/**
 * {@link writeBuildFormats} for a dataset held as texts (the fan-in): the split texts
 * go to a private temp folder, the formats are written there, and every file written
 * is handed to `put` by its relative path. The temp folder is removed in any case.
 */
export async function publishBuildFormats(
  put: (rel: string, data: Buffer) => Promise<void>,
  splits: Record<string, string>,
  manifest: Record<string, unknown>,
  config: BalanceConfig,
): Promise<BuildFormats | null> {
  if (config.formats === undefined) return null;
  const dir = await mkdtemp(join(tmpdir(), 'sft-formats-'));
  try {
    for (const [name, text] of Object.entries(splits))
      await writeFile(join(dir, `${name}.jsonl`), text);
    const done = await writeBuildFormats(dir, manifest, config);
    if (done) for (const rel of done.section.files) await put(rel, await readFile(join(dir, rel)));
    return done;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
