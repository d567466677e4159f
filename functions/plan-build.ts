/**
 * Plan (queue trigger on SFT_PLAN_QUEUE): splits the build's source into shards,
 * records plan.json, then queues one message per shard, and marks the plan queued.
 *
 * A blob or file source is referenced, not copied (planReferences): a shard is a
 * contiguous byte range of the source cut at a new conversation, and owns the
 * conversations that start in it; a later turn of one of them (a source not grouped
 * by conversation) is added to its owner as another run. The plan records each
 * shard's runs (offset, bytes, first line) and the source's ETag (or a file's size and
 * mtime); the batch reads its runs with ranged reads that check them. A Kusto
 * source has no bytes to reference: its rows are routed by a hash of the
 * conversation id and written as shard blobs of `LINENO<TAB>RAW` lines (writeShards).
 *
 * One planner at a time per build: the plan step holds a lease on `plan.claim` while
 * it writes shards and queues them. Another plan message of the same build (a second
 * `run` of the same id, a duplicate start) waits while the claim is held and ends
 * once the plan is queued, without writing or queuing anything; if the holder dies,
 * its lease lapses and the waiter plans in its place. A redelivery after the plan
 * was recorded but before it was all queued re-queues only the shards without a
 * marker; after `plan.queued`, it does nothing.
 */
import type { InvocationContext } from '@azure/functions';
import {
  PlanMessageSchema,
  buildPaths,
  routeLine,
  shardCount,
  shardIdOf,
  shardIndexOf,
  sourceTooLarge,
  conversationIdOf,
  MAX_LINE_BYTES,
  type BuildSpec,
  type PlanRecord,
  type ShardRun,
} from '../shared/build/spec';
import {
  SourceChangedError,
  sourceBytes,
  type LineSource,
  type SourceIdentity,
} from '../adapters/storage/source';
import { telemetryShape } from '../shared/build/batch';
import type { Lease } from '../adapters/storage/blob-store';
import {
  errorText,
  getOutcome,
  getPlan,
  getSpec,
  listMarkers,
  parseMessage,
  pool,
  recordOutcome,
} from './lib/build-ops';
import type { Deps } from './lib/deps';
import { PermanentError, TransientError } from '../shared/errors';

/** The plan claim's lease (s): a dead planner's claim lapses after this long. */
const CLAIM_SECONDS = 15;
/** How often a waiting planner looks at the claim and the queued mark (ms). */
const CLAIM_POLL_MS = 250;

const planClaimOf = (buildId: string) =>
  buildPaths(buildId).plan.replace(/plan\.json$/, 'plan.claim');
/** Written once every shard message of the plan is queued. */
export const planQueuedOf = (buildId: string) =>
  buildPaths(buildId).plan.replace(/plan\.json$/, 'plan.queued');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The plan claim, held: `check` throws once the lease was lost (another planner may hold it). */
interface HeldClaim {
  check(): void;
  release(): Promise<void>;
}

/**
 * Takes the build's plan claim, waiting while another planner holds it; null when
 * the plan got queued meanwhile (by the holder): nothing left to do.
 */
async function claimPlan(
  deps: Deps,
  buildId: string,
  context: InvocationContext,
): Promise<HeldClaim | null> {
  const path = planClaimOf(buildId);
  await deps.store.create(path, '');
  let said = false;
  let lease: Lease | null;
  for (;;) {
    if (await deps.store.exists(planQueuedOf(buildId))) return null;
    lease = await deps.store.acquireLease(path, CLAIM_SECONDS);
    if (lease) break;
    if (!said) {
      context.log(`plan: build ${buildId} is being planned by another planner; waiting for it`);
      said = true;
    }
    await sleep(CLAIM_POLL_MS);
  }
  const held = lease;
  let lost: unknown;
  const timer = setInterval(
    () => {
      held.renew().catch((err: unknown) => {
        lost ??= err;
      });
    },
    (CLAIM_SECONDS * 1000) / 3,
  );
  return {
    check() {
      if (lost !== undefined)
        throw new TransientError(`plan: lost the plan claim of build ${buildId}`, {
          cause: lost,
        });
    },
    async release() {
      clearInterval(timer);
      await held.release().catch(() => {}); // lapses by itself
    },
  };
}

/** Bytes buffered per shard before a block is staged. */
const FLUSH_BYTES = 1 << 20;
/** Blocks being staged at once. */
const STAGE_WIDTH = 8;

const ID_PREFIX = Buffer.from('{"conversationId":"');
const ID_KEY = Buffer.from('"conversationId"');

/**
 * {@link routeLine} on the raw bytes of a line: the common case (the id first, no
 * escapes, named once) is read without decoding the line; anything else is decoded
 * and routed as a string, so both give the same shard.
 */
export function routeBytes(
  buf: Buffer,
  start: number,
  end: number,
  lineNo: number,
  shards: number,
  /** The column holding the conversation id when a mapping renames it. */
  column?: string,
): number {
  const idStart = start + ID_PREFIX.length;
  if (column !== undefined && column !== 'conversationId')
    return routeLine(buf.toString('utf8', start, end), lineNo, shards, column);
  if (end > idStart && buf.compare(ID_PREFIX, 0, ID_PREFIX.length, start, idStart) === 0) {
    const rest = buf.subarray(idStart, end);
    const q = rest.indexOf(0x22);
    if (q > 0 && rest.subarray(0, q).indexOf(0x5c) === -1 && rest.indexOf(ID_KEY, q) === -1) {
      return shardIndexOf(buf.toString('utf8', idStart, idStart + q), shards);
    }
  }
  return routeLine(buf.toString('utf8', start, end), lineNo, shards);
}

/** One shard's pending bytes: `LINENO<TAB>RAW\n` lines, copied once. */
class ShardBuffer {
  data = Buffer.allocUnsafe(FLUSH_BYTES + (64 << 10));
  length = 0;

  /** `bytes`: the whole size of a line cut short, kept in its shard line (LINENO:BYTES). */
  append(lineNo: number, src: Buffer, start: number, end: number, bytes?: number): void {
    const need = 28 + end - start;
    if (this.length + need > this.data.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.length + need));
      this.data.copy(grown, 0, 0, this.length);
      this.data = grown;
    }
    const head = bytes === undefined ? `${lineNo}\t` : `${lineNo}:${bytes}\t`;
    this.length += this.data.write(head, this.length, 'latin1');
    this.length += src.copy(this.data, this.length, start, end);
    this.data[this.length++] = 0x0a;
  }

  take(): Buffer {
    const out = this.data.subarray(0, this.length);
    this.data = Buffer.allocUnsafe(FLUSH_BYTES + (64 << 10));
    this.length = 0;
    return out;
  }
}

/** A source over the shard limits (SFT_MAX_SHARDS × SFT_SHARD_BYTES × 4): the build fails. */
export class SourceTooLargeError extends PermanentError {}

/** Runs kept inline in plan.json up to this many in all; more go to index blobs. */
const INLINE_RUNS = 4096;

/** The conversation id of a line's bytes ({@link conversationIdOf}, fast path without decoding). */
function idOfBytes(
  buf: Buffer,
  start: number,
  end: number,
  column = 'conversationId',
): string | null {
  // A mapped id column (issue 18) is read by name from the decoded line.
  if (column !== 'conversationId')
    return conversationIdOf(buf.toString('utf8', start, end), column);
  const idStart = start + ID_PREFIX.length;
  if (end > idStart && buf.compare(ID_PREFIX, 0, ID_PREFIX.length, start, idStart) === 0) {
    const rest = buf.subarray(idStart, end);
    const q = rest.indexOf(0x22);
    if (q > 0 && rest.subarray(0, q).indexOf(0x5c) === -1 && rest.indexOf(ID_KEY, q) === -1)
      return buf.toString('utf8', idStart, idStart + q);
  }
  return conversationIdOf(buf.toString('utf8', start, end));
}

/**
 * Plans a blob or file source by reference: scans it once, cuts it into about `n`
 * contiguous ranges at conversation starts, and records each shard's runs. Writes
 * only the index blobs of shards whose runs do not fit inline; returns the plan.
 */
export async function planReferences(
  deps: Deps,
  spec: BuildSpec,
  source: LineSource,
  check: () => void = () => {},
): Promise<PlanRecord> {
  const identity = await source.identity!();
  const bytes = await source.size();
  const tooLarge = sourceTooLarge(bytes, spec.shardBytes, spec.maxShards);
  if (tooLarge !== null) throw new SourceTooLargeError(tooLarge);
  const n = shardCount(bytes, spec.shardBytes, spec.maxShards);
  const runs = new RunPlanner(n, Math.ceil(bytes / n), spec.config.columns?.conversationId);
  await scanLinePositions(source, identity, check, (...a) => runs.line(...a));
  // A file written to during the scan: its size or mtime moved.
  const after = await source.identity!();
  if (JSON.stringify(after) !== JSON.stringify(identity))
    throw new SourceChangedError(
      `the telemetry source (${source.name}) changed while it was planned; run the build again`,
    );
  check();
  const ids = runs.runs.map((_, i) => shardIdOf(i));
  const inline = runs.runs.reduce((a, r) => a + r.length, 0) <= INLINE_RUNS;
  if (!inline) {
    const p = buildPaths(spec.id);
    const indexed = ids.map((id, i) => ({ id, runs: runs.runs[i]! }));
    await pool(indexed, 16, (x) =>
      deps.store.put(p.shardIndex(x.id), JSON.stringify({ runs: x.runs })),
    );
  }
  return {
    buildId: spec.id,
    sourceBytes: bytes,
    rows: runs.total,
    source: identity,
    shards: ids.map((id, i) => ({
      id,
      rows: runs.rows[i]!,
      bytes: runs.sizes[i]!,
      ...(inline ? { runs: runs.runs[i]! } : {}),
    })),
  };
}

/** Where a line lies: `buf[start, end)` its first bytes, at `at`, `next` the following line's start, `whole` its size without CR/LF. */
type LineAt = (
  buf: Buffer,
  start: number,
  end: number,
  at: number,
  next: number,
  whole: number,
) => void;

const CUT = MAX_LINE_BYTES + 1;

/**
 * The shards' runs as the lines go by: a new shard starts once the current one holds
 * its share of bytes, at a conversation's first line; a later turn of a conversation
 * joins its owner's shard (as an extra run when it is not adjacent).
 */
class RunPlanner {
  readonly runs: ShardRun[][] = [[]];
  readonly rows: number[] = [0];
  readonly sizes: number[] = [0];
  /** Where each shard's last run ends (-1: closed, the next line starts a new run). */
  private readonly ends: number[] = [-1];
  private readonly owner = new Map<string, number>();
  private k = 0;
  private rangeBytes = 0;
  private lineNo = 0;
  total = 0;

  constructor(
    private readonly n: number,
    private readonly target: number,
    private readonly idColumn: string | undefined,
  ) {}

  line(buf: Buffer, start: number, end: number, at: number, next: number, whole: number): void {
    this.lineNo++;
    if (whole === 0) {
      // An empty line: no row; kept inside the current run when it continues one.
      if (this.ends[this.k] === at) this.extend(this.k, at, next);
      this.rangeBytes += next - at;
      return;
    }
    const id = idOfBytes(buf, start, Math.min(end, start + Math.min(whole, CUT)), this.idColumn);
    if (
      this.rangeBytes >= this.target &&
      this.k < this.n - 1 &&
      (id === null || !this.owner.has(id))
    )
      this.nextShard();
    this.rangeBytes += next - at;
    let o = this.k;
    if (id !== null) {
      const known = this.owner.get(id);
      if (known === undefined) this.owner.set(id, this.k);
      else o = known;
    }
    this.rows[o]!++;
    this.total++;
    if (whole > CUT) {
      this.runs[o]!.push([at, CUT, this.lineNo, whole]);
      this.sizes[o]! += CUT;
      this.ends[o] = -1;
    } else if (this.ends[o] === at) {
      this.extend(o, at, next);
    } else {
      this.runs[o]!.push([at, next - at, this.lineNo]);
      this.sizes[o]! += next - at;
      this.ends[o] = next;
    }
  }

  private extend(o: number, at: number, next: number): void {
    this.runs[o]![this.runs[o]!.length - 1]![1] += next - at;
    this.sizes[o]! += next - at;
    this.ends[o] = next;
  }

  private nextShard(): void {
    this.k++;
    this.rangeBytes = 0;
    this.runs.push([]);
    this.rows.push(0);
    this.sizes.push(0);
    this.ends.push(-1);
  }
}

/**
 * Reads the source's chunks and hands each line to `line` with its byte position; a
 * line longer than CUT is given by its first CUT + 1 bytes and its whole size.
 */
async function scanLinePositions(
  source: LineSource,
  identity: SourceIdentity,
  check: () => void,
  line: LineAt,
): Promise<void> {
  let base = 0;
  /** The first bytes (up to CUT + 1) of a line that runs over a chunk's end. */
  let carry: Buffer | null = null;
  let carryAt = 0;
  let carried = 0;
  let lastByte = 0;
  for await (const chunk of source.chunks!(identity)) {
    let pos = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, pos)) {
      if (carry) {
        if (carry.length <= CUT)
          carry = Buffer.concat([carry, chunk.subarray(0, Math.min(nl, CUT + 1 - carry.length))]);
        const len = carried + nl;
        const cr = (nl > 0 ? chunk[nl - 1] : lastByte) === 0x0d;
        line(carry, 0, carry.length, carryAt, base + nl + 1, cr ? len - 1 : len);
        carry = null;
      } else {
        const cr = nl > pos && chunk[nl - 1] === 0x0d;
        line(chunk, pos, nl, base + pos, base + nl + 1, nl - pos - (cr ? 1 : 0));
      }
      pos = nl + 1;
    }
    if (pos < chunk.length) {
      if (carry) {
        if (carry.length <= CUT)
          carry = Buffer.concat([carry, chunk.subarray(0, CUT + 1 - carry.length)]);
        carried += chunk.length;
      } else {
        carry = Buffer.from(chunk.subarray(pos, Math.min(chunk.length, pos + CUT + 1)));
        carryAt = base + pos;
        carried = chunk.length - pos;
      }
      lastByte = chunk[chunk.length - 1]!;
    }
    base += chunk.length;
    check();
  }
  if (carry) line(carry, 0, carry.length, carryAt, base, carried - (lastByte === 0x0d ? 1 : 0));
}

/** Plans the build's source: by reference when it can be (a blob, a file), else as shard blobs. */
export async function planShards(
  deps: Deps,
  spec: BuildSpec,
  check: () => void = () => {},
): Promise<PlanRecord> {
  // CSV/Parquet parts: read with the mapping; a header without a needed column is refused.
  const columns = spec.config.columns;
  const shape = telemetryShape(spec.config, spec.window);
  const source = deps.openSource(spec.source, { columns, shape });
  if (source.identity && source.readSpans && source.chunks)
    return planReferences(deps, spec, source, check);
  return writeShards(deps, spec, check, source);
}

/**
 * Receives one line of the source: `buf[start, end)`, at most {@link LINE_CUT} bytes
 * of it (no newline), and `whole`, the line's size in the source.
 */
type LineSink = (buf: Buffer, start: number, end: number, whole: number) => void;

/** A line over the limit is kept to one byte past it: the batch quarantines it (line_too_long). */
const LINE_CUT = MAX_LINE_BYTES + 1;

/**
 * Splits a byte stream into lines for `sink`, carrying a partial line across chunks;
 * of a line over the limit only LINE_CUT bytes are kept, so no buffer grows with it.
 * `push` is false when a chunk only extended the carried line (no line ended in it).
 */
function lineSplitter(sink: LineSink) {
  let carry: Buffer | null = null;
  /** The whole size of the carried partial line (beyond the LINE_CUT bytes kept of it). */
  let carried = 0;
  return {
    push(chunk: Buffer): boolean {
      let pos = 0;
      if (carry) {
        const nl = chunk.indexOf(0x0a);
        if (nl === -1) {
          if (carry.length < LINE_CUT)
            carry = Buffer.concat([carry, chunk.subarray(0, LINE_CUT - carry.length)]);
          carried += chunk.length;
          return false;
        }
        const first = Buffer.concat([
          carry,
          chunk.subarray(0, Math.max(0, Math.min(nl, LINE_CUT - carry.length))),
        ]);
        sink(first, 0, first.length, carried + nl);
        pos = nl + 1;
        carry = null;
      }
      for (let nl = chunk.indexOf(0x0a, pos); nl !== -1; nl = chunk.indexOf(0x0a, pos)) {
        sink(chunk, pos, nl, nl - pos);
        pos = nl + 1;
      }
      if (pos < chunk.length) {
        carry = Buffer.from(chunk.subarray(pos, Math.min(chunk.length, pos + LINE_CUT)));
        carried = chunk.length - pos;
      }
      return true;
    },
    /** The last line, when the source does not end with a newline. */
    end(): void {
      if (carry) sink(carry, 0, carry.length, carried);
    },
  };
}

/**
 * The shard blobs being written: a buffer per shard, staged as a block once it holds
 * FLUSH_BYTES (at most STAGE_WIDTH blocks in flight), then committed. A failed stage
 * is kept and thrown at the next `stageFull` or `finish`.
 */
class ShardStager {
  readonly rows: number[];
  readonly sizes: number[];
  private readonly writers: ReturnType<Deps['store']['blockWriter']>[];
  private readonly buffers: ShardBuffer[];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly full: number[] = [];
  private failure: Error | undefined;

  constructor(deps: Deps, paths: ReturnType<typeof buildPaths>, ids: readonly string[]) {
    this.writers = ids.map((id) => deps.store.blockWriter(paths.shard(id)));
    this.buffers = ids.map(() => new ShardBuffer());
    this.rows = new Array<number>(ids.length).fill(0);
    this.sizes = new Array<number>(ids.length).fill(0);
  }

  /** Adds a line to shard `k`; `bytes`: its whole size when cut short. */
  append(k: number, lineNo: number, buf: Buffer, start: number, end: number, bytes?: number) {
    const b = this.buffers[k]!;
    b.append(lineNo, buf, start, end, bytes);
    this.rows[k]!++;
    if (b.length >= FLUSH_BYTES) this.full.push(k);
  }

  /** Stages the buffers that filled up; throws a stage's failure. */
  async stageFull(): Promise<void> {
    while (this.full.length > 0) await this.stage(this.full.pop()!);
    if (this.failure !== undefined) throw this.failure;
  }

  /** Stages what every buffer still holds and waits for all stages; throws a failure. */
  async finish(): Promise<void> {
    for (let k = 0; k < this.buffers.length; k++)
      if (this.buffers[k]!.length > 0) await this.stage(k);
    await Promise.all(this.inFlight);
    if (this.failure !== undefined) throw this.failure;
  }

  /** Commits every shard blob (its staged blocks, in order). */
  async commit(): Promise<void> {
    await pool(this.writers, 16, (w) => w.commit());
  }

  private async stage(k: number): Promise<void> {
    const data = this.buffers[k]!.take();
    this.sizes[k]! += data.length;
    const job = this.writers[k]!.stage(data).catch((err: unknown) => {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
    });
    this.inFlight.add(job);
    void job.finally(() => this.inFlight.delete(job));
    if (this.inFlight.size >= STAGE_WIDTH) await Promise.race(this.inFlight);
  }
}

/** Streams the source into shard blobs (a Kusto query's rows); returns the plan (not yet written). */
export async function writeShards(
  deps: Deps,
  spec: BuildSpec,
  check: () => void = () => {},
  source: LineSource = deps.openSource(spec.source),
): Promise<PlanRecord> {
  const idColumn = spec.config.columns?.conversationId;
  const bytes = await source.size();
  const tooLarge = sourceTooLarge(bytes, spec.shardBytes, spec.maxShards);
  if (tooLarge !== null) throw new SourceTooLargeError(tooLarge);
  const n = shardCount(bytes, spec.shardBytes, spec.maxShards);
  const ids = Array.from({ length: n }, (_, i) => shardIdOf(i));
  const shards = new ShardStager(deps, buildPaths(spec.id), ids);
  let total = 0;
  let lineNo = 0;
  const lines = lineSplitter((buf, start, end, whole) => {
    lineNo++;
    if (whole === end - start && end > start && buf[end - 1] === 0x0d) whole = --end - start;
    if (end - start > LINE_CUT) end = start + LINE_CUT;
    if (end === start) return;
    const k = routeBytes(buf, start, end, lineNo, n, idColumn);
    shards.append(k, lineNo, buf, start, end, whole > end - start ? whole : undefined);
    total++;
  });
  for await (const chunk of sourceBytes(source)) {
    if (!lines.push(chunk)) continue;
    await shards.stageFull();
    check();
  }
  lines.end();
  await shards.finish();
  check();
  await shards.commit();
  return {
    buildId: spec.id,
    sourceBytes: bytes,
    rows: total,
    shards: ids.map((id, k) => ({ id, rows: shards.rows[k]!, bytes: shards.sizes[k]! })),
  };
}

export function createPlanBuild(deps: Deps) {
  return async function planBuildHandler(
    message: unknown,
    context: InvocationContext,
  ): Promise<void> {
    const msg = parseMessage(PlanMessageSchema, message, context);
    if (!msg) return;
    const spec = await getSpec(deps, msg.buildId);
    if (!spec) {
      context.error(`plan: no build ${msg.buildId}; dropping the message`);
      return;
    }
    if (await getOutcome(deps, spec.id)) return;
    const claim = await claimPlan(deps, spec.id, context);
    if (!claim) {
      context.log(`plan: build ${spec.id} is planned and queued; nothing to do`);
      return;
    }
    try {
      await planHeld(deps, spec, claim, context);
    } finally {
      await claim.release();
    }
  };
}

/** The plan step under the claim: shards and plan (unless recorded), then the queue. */
async function planHeld(
  deps: Deps,
  spec: BuildSpec,
  claim: HeldClaim,
  context: InvocationContext,
): Promise<void> {
  if (await getOutcome(deps, spec.id)) return;
  if (await deps.store.exists(planQueuedOf(spec.id))) return;
  const p = buildPaths(spec.id);
  let plan = await getPlan(deps, spec.id);
  if (!plan) {
    try {
      plan = await planShards(deps, spec, () => claim.check());
    } catch (err) {
      // Permanent by type (a missing source, one too large, a rejected Kusto query):
      // the build fails with the reason; anything else goes back to the queue.
      if (!(err instanceof PermanentError)) throw err;
      await recordOutcome(deps, {
        buildId: spec.id,
        state: 'failed',
        stage: 'plan',
        reason: errorText(err),
        completedAt: deps.now().toISOString(),
      });
      context.error(`plan: build ${spec.id} failed: ${errorText(err)}`);
      return;
    }
    if (plan.rows === 0) {
      await recordOutcome(deps, {
        buildId: spec.id,
        state: 'failed',
        stage: 'plan',
        reason: `the source (${spec.source.kind}:${spec.source.path}) has no rows`,
        completedAt: deps.now().toISOString(),
      });
      return;
    }
    claim.check();
    await deps.store.put(p.plan, JSON.stringify(plan));
    deps.failpoint('plan:planned');
  }
  const marked = new Set((await listMarkers(deps, spec.id)).map((m) => m.shardId));
  const todo = plan.shards.filter((s) => !marked.has(s.id));
  claim.check();
  await pool(todo, 16, (s) =>
    deps.queues.send(deps.settings.queues.shards, {
      kind: 'shard',
      buildId: spec.id,
      shardId: s.id,
    }),
  );
  await deps.store.create(planQueuedOf(spec.id), '');
  context.log(
    `plan: build ${spec.id}: ${plan.rows} rows in ${plan.shards.length} shards, ${todo.length} queued`,
  );
}
