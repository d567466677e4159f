/**
 * From telemetry turns to samples, for the seed's two pipelines:
 * - session: the first turn of every complete conversation;
 * - conversation: every turn of every complete conversation, with the previous user
 *   messages as history (within a turn and token budget) and its position.
 */
import { defaultSampleId, type TelemetryTurn } from '../contracts/rows';
import { fingerprint } from '../util/hash';
import { turnPosition, type Position } from '../strata/strata';

export const PIPELINES = ['session', 'conversation'] as const;
export type Pipeline = (typeof PIPELINES)[number];

export type Sample = TelemetryTurn & { sampleId: string; history: string[]; position: Position };

export interface HistoryOptions {
  /** Previous turns carried at most (Galaxy found one or two beat the whole chat). */
  historyTurns: number;
  /** Token budget for the history, estimated at 4 characters a token. */
  historyTokenBudget: number;
}

export const DEFAULT_HISTORY: HistoryOptions = { historyTurns: 3, historyTokenBudget: 1_500 };

export interface AssemblyStats {
  conversations: number;
  complete: number;
  /** Conversations missing turns, or whose turns disagree on turnCount. */
  incomplete: number;
  /** Repeated (conversationId, turnIndex) rows; one is kept. */
  duplicateTurns: number;
}

/** A rough token count (4 characters a token), enough to bound a prompt. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** The most recent previous messages that fit both budgets, oldest first. */
export function historyWindow(previous: readonly string[], opts: HistoryOptions): string[] {
  const out: string[] = [];
  let tokens = 0;
  for (let i = previous.length - 1; i >= 0 && out.length < opts.historyTurns; i--) {
    const msg = previous[i]!;
    tokens += estimateTokens(msg);
    if (tokens > opts.historyTokenBudget) break;
    out.push(msg);
  }
  return out.reverse();
}

/**
 * Of two rows for the same (conversationId, turnIndex), the one kept: the smaller
 * content fingerprint (the first one on a tie), so arrival order does not decide.
 */
export function keptDuplicate(prior: TelemetryTurn, turn: TelemetryTurn): TelemetryTurn {
  return contentFingerprint(turn) >= contentFingerprint(prior) ? prior : turn;
}

const STUB_FINGERPRINT = '\u0000contentFingerprint';

/** A turn's content fingerprint; a stub carries its turn's. */
function contentFingerprint(t: TelemetryTurn): string {
  const fp = (t as unknown as Record<string, unknown>)[STUB_FINGERPRINT];
  return typeof fp === 'string' ? fp : fingerprint(JSON.stringify(t));
}

/**
 * What assembly needs of a turn whose text no sample uses (a later turn in the session
 * pipeline): its place, its turnCount and its content fingerprint (which of two
 * duplicates is kept), without the text.
 */
export function turnStub(t: TelemetryTurn): TelemetryTurn {
  return {
    conversationId: t.conversationId,
    turnIndex: t.turnIndex,
    turnCount: t.turnCount,
    [STUB_FINGERPRINT]: fingerprint(JSON.stringify(t)),
  } as unknown as TelemetryTurn;
}

/**
 * The samples of one conversation from its turns (one per turnIndex, ordered by
 * turnIndex); null when the conversation is incomplete (turns missing, or turns
 * disagreeing on turnCount).
 */
export function conversationSamples(
  ordered: readonly TelemetryTurn[],
  pipeline: Pipeline,
  history: HistoryOptions = DEFAULT_HISTORY,
): Sample[] | null {
  const count = ordered[0]!.turnCount;
  const complete =
    ordered.length === count &&
    ordered.every((t, i) => t.turnIndex === i + 1 && t.turnCount === count);
  if (!complete) return null;
  if (pipeline === 'session') {
    const first = ordered[0]!;
    return [{ ...first, sampleId: defaultSampleId(first), history: [], position: 'early' }];
  }
  const samples: Sample[] = [];
  const previous: string[] = [];
  for (const t of ordered) {
    samples.push({
      ...t,
      sampleId: defaultSampleId(t),
      history: historyWindow(previous, history),
      position: turnPosition(t.turnIndex, t.turnCount),
    });
    previous.push(t.userMessage);
  }
  return samples;
}

/**
 * Assembles conversations from turns that arrive sorted by (conversationId, turnIndex)
 * (any order among duplicates): each conversation's samples are handed on as soon as
 * its last turn is seen, so only one conversation is held at a time. Gives the same
 * samples, in the same order, and the same stats as {@link ConversationAssembler}.
 */
export class SortedAssembler {
  private readonly stats: AssemblyStats = {
    conversations: 0,
    complete: 0,
    incomplete: 0,
    duplicateTurns: 0,
  };
  private current: TelemetryTurn[] = [];
  private lastId: string | null = null;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly history: HistoryOptions,
    private readonly onSamples: (samples: Sample[]) => void,
  ) {}

  add(turn: TelemetryTurn): void {
    const last = this.current[this.current.length - 1];
    if (last && turn.conversationId === last.conversationId) {
      if (turn.turnIndex === last.turnIndex) {
        this.stats.duplicateTurns++;
        this.current[this.current.length - 1] = keptDuplicate(last, turn);
        return;
      }
    } else {
      if (this.lastId !== null && !(turn.conversationId > this.lastId)) {
        throw new RangeError(`turns out of order: ${turn.conversationId} after ${this.lastId}`);
      }
      this.flush();
      this.lastId = turn.conversationId;
      this.stats.conversations++;
    }
    this.current.push(turn);
  }

  private flush(): void {
    if (this.current.length === 0) return;
    const samples = conversationSamples(this.current, this.pipeline, this.history);
    this.current = [];
    if (samples === null) {
      this.stats.incomplete++;
      return;
    }
    this.stats.complete++;
    this.onSamples(samples);
  }

  /** Hands on the last conversation; the stats over all of them. */
  end(): AssemblyStats {
    this.flush();
    return { ...this.stats };
  }
}

/** Collects turns by conversation; samples come out in (conversationId, turnIndex) order. */
export class ConversationAssembler {
  private readonly byConversation = new Map<string, Map<number, TelemetryTurn>>();
  private duplicateTurns = 0;

  add(turn: TelemetryTurn): void {
    let turns = this.byConversation.get(turn.conversationId);
    if (!turns) {
      turns = new Map();
      this.byConversation.set(turn.conversationId, turns);
    }
    const prior = turns.get(turn.turnIndex);
    if (prior) {
      this.duplicateTurns++;
      turns.set(turn.turnIndex, keptDuplicate(prior, turn));
      return;
    }
    turns.set(turn.turnIndex, turn);
  }

  samples(
    pipeline: Pipeline,
    history: HistoryOptions = DEFAULT_HISTORY,
  ): { samples: Sample[]; stats: AssemblyStats } {
    const stats: AssemblyStats = {
      conversations: this.byConversation.size,
      complete: 0,
      incomplete: 0,
      duplicateTurns: this.duplicateTurns,
    };
    const samples: Sample[] = [];
    const ids = [...this.byConversation.keys()].sort();
    for (const id of ids) {
      const turns = this.byConversation.get(id)!;
      const ordered = [...turns.values()].sort((a, b) => a.turnIndex - b.turnIndex);
      const made = conversationSamples(ordered, pipeline, history);
      if (made === null) {
        stats.incomplete++;
        continue;
      }
      stats.complete++;
      for (const s of made) samples.push(s);
    }
    return { samples, stats };
  }
}
