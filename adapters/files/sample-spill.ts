/**
 * The samples of a yield-aware (`--waves`) in-process run, kept in a temporary file
 * rather than in memory: the wave planner holds only its item per sample (id, stratum,
 * signal score, dedup group) and each sample's byte range; a wave's samples are read
 * back by range, in one forward pass over the file.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BalanceConfig } from '../../shared/contracts/config';
import type { Sample } from '../../shared/samples/assemble';
import type { WaveItem } from '../../shared/waves/planner';
import { waveItemOf, type WaveSamples } from '../../shared/waves/judge';
import { loadRanges } from './lines';

export class SampleSpill implements WaveSamples {
  readonly items: WaveItem[] = [];
  private readonly itemOf: (s: Sample) => WaveItem | null;
  /** Byte offset and length of each item's sample in the file, by item index. */
  private at: number[] = [];
  private len: number[] = [];
  private readonly index = new Map<string, number>();
  private dir: string | null = mkdtempSync(join(tmpdir(), 'sft-balancer-samples-'));
  private readonly path = join(this.dir!, 'samples.jsonl');
  private fd = openSync(this.path, 'wx', 0o600);
  private parts: string[] = [];
  private buffered = 0;
  private size = 0;

  constructor(config: BalanceConfig) {
    this.itemOf = waveItemOf(config);
  }

  /** Keeps a sample for the planner; one outside the strata is never judged and not kept. */
  add(sample: Sample): void {
    const item = this.itemOf(sample);
    if (!item) return;
    const text = JSON.stringify(sample);
    const bytes = Buffer.byteLength(text, 'utf8');
    this.index.set(item.id, this.items.length);
    this.items.push(item);
    this.at.push(this.size);
    this.len.push(bytes);
    this.size += bytes + 1;
    this.parts.push(text, '\n');
    this.buffered += text.length;
    if (this.buffered >= 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.parts.length === 0) return;
    const chunk = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    this.buffered = 0;
    for (let off = 0; off < chunk.length;) off += writeSync(this.fd, chunk, off);
  }

  /** The samples of `ids`, in that order. */
  async load(ids: readonly string[]): Promise<Sample[]> {
    this.flush();
    const order = ids.map((id) => this.index.get(id)!).sort((a, b) => a - b);
    const lines = await loadRanges(
      this.path,
      order.map((i) => ({ at: this.at[i]!, len: this.len[i]! })),
    );
    const byIndex = new Map(order.map((i, k) => [i, JSON.parse(lines[k]!) as Sample]));
    return ids.map((id) => byIndex.get(this.index.get(id)!)!);
  }

  /** Removes the file (safe to call twice). */
  dispose(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
    this.at = [];
    this.len = [];
  }
}
