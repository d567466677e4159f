/**
 * The router probe's switches on the command line (`run`, `balance`): `--no-probe` and
 * `--probe-min-auc X`, the same as SFT_PROBE=false and SFT_PROBE_MIN_AUC=X, which the
 * runner passes to the Functions app and the in-process build reads (docs/probe.md).
 */
import { SettingsError, probeSettingsOfEnv } from '../shared/build/settings';
import type { ProbeStepSettings } from '../shared/probe';
import { UsageError } from './args';

export const PROBE_OPTIONS = {
  'no-probe': { type: 'boolean' },
  'probe-min-auc': { type: 'string' },
} as const;

export const PROBE_HELP = `  --no-probe                no router probe at the end of the build (on by default: probe.json,
                            label-review.jsonl and manifest.probe; same as SFT_PROBE=false)
  --probe-min-auc X         fail the build (exit 1, files kept) when the probe's text AUC is below X
                            (default: the probe only advises; same as SFT_PROBE_MIN_AUC)`;

/** The flags as the settings the app reads. */
export function probeEnvFromFlags(v: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  if (v['no-probe'] === true) {
    if (v['probe-min-auc'] !== undefined)
      throw new UsageError('give --no-probe or --probe-min-auc, not both');
    env.SFT_PROBE = 'false';
  }
  const min = v['probe-min-auc'];
  if (typeof min === 'string') {
    const n = Number(min);
    if (min.trim() === '' || !(n >= 0 && n <= 1))
      throw new UsageError(`--probe-min-auc must be a number in [0, 1], got "${min}"`);
    env.SFT_PROBE_MIN_AUC = min;
  }
  return env;
}

/** The probe settings of an environment (with the flags applied); a bad value is a usage error. */
export function probeSettingsOf(env: Record<string, string | undefined>): ProbeStepSettings {
  try {
    return probeSettingsOfEnv(env);
  } catch (err) {
    if (err instanceof SettingsError) throw new UsageError(err.message);
    throw err;
  }
}
