/** A manifest as the CLI jobs write it, made by the real balancer over generated rows. */
import { StreamingBalancer } from '../../shared/balance/balancer';
import { parseBalanceConfig, type BalanceConfigInput } from '../../shared/contracts/config';
import type { AnnotatedRow } from '../../shared/contracts/rows';
import { profileRows } from '../../shared/report/profile';
import { annotatedRows } from '../support/rows';

export function manifestOf(
  rows: AnnotatedRow[],
  config: BalanceConfigInput,
  extra: Record<string, unknown> = {},
  quarantined: Record<string, number> = {},
) {
  const cfg = parseBalanceConfig(config);
  const b = new StreamingBalancer(cfg);
  for (const [reason, n] of Object.entries(quarantined))
    for (let i = 0; i < n; i++) b.recordQuarantine(reason as never);
  for (const r of rows) b.offer(r);
  const result = b.finish();
  return {
    tool: { name: 'sft-balancer', version: '0.1.0' },
    command: 'run',
    ...extra,
    ...result.manifest,
    profile: {
      before: profileRows(cfg, rows),
      after: profileRows(cfg, [...result.train, ...result.validation]),
    },
  };
}

/** Conversation-pipeline rows with a judge confidence on each. */
export function conversationRows(n = 600): AnnotatedRow[] {
  return annotatedRows({ conversations: n, seed: 11 }).map((r, i) => ({
    ...r,
    confidence: 0.5 + ((i * 37) % 50) / 100,
  }));
}
