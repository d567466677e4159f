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
      // Keep one of the two by content, so arrival order does not decide.
      if (fingerprint(JSON.stringify(turn)) >= fingerprint(JSON.stringify(prior))) return;
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
      const count = ordered[0]!.turnCount;
      const complete =
        ordered.length === count &&
        ordered.every((t, i) => t.turnIndex === i + 1 && t.turnCount === count);
      if (!complete) {
        stats.incomplete++;
        continue;
      }
      stats.complete++;
      if (pipeline === 'session') {
        const first = ordered[0]!;
        samples.push({
          ...first,
          sampleId: defaultSampleId(first),
          history: [],
          position: 'early',
        });
        continue;
      }
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
    }
    return { samples, stats };
  }
}
