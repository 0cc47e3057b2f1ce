/** Per-channel position (epoch/seq): resume with `since`, drop duplicates, detect gaps and resets. */

import type { MessageFrame, Position, SubscribedFrame } from "./protocol";

/** What to do with an incoming message. */
export type MessageVerdict =
  /** Apply it. */
  | "apply"
  /** Seen already (same epoch, seq not newer): drop. */
  | "duplicate"
  /** Messages are missing: drop this one and resubscribe with `since` (the replay includes it). */
  | "gap"
  /** The channel's history was reset (new epoch): resubscribe with `since` to get the reset and a snapshot. */
  | "epoch";

/** Outcome of a `subscribed` reply. */
export type SubscribeOutcome = "fresh" | "recovered" | "reset";

interface ChannelPosition {
  epoch: string;
  seq: number;
  /** Conflated (`max_rate`): seq gaps are by design and must not be recovered. */
  conflated: boolean;
}

/**
 * The client side of docs/protocol.md "History and recovery".
 *
 * The server answers a resubscribe with `since` either `recovered: true` and replays
 * exactly what was missed, or `recovered: false` and a snapshot. This class only keeps
 * positions and judges frames; the client does the I/O.
 */
export class StateSync {
  private readonly positions = new Map<string, ChannelPosition>();
  /** Counters for diagnostics and tests. */
  readonly stats = { applied: 0, duplicates: 0, gaps: 0, resets: 0, recovered: 0 };

  /** The `since` to send when (re)subscribing, if the channel has a position. */
  since(channel: string): Position | undefined {
    const p = this.positions.get(channel);
    // seq 0 of a fresh epoch is still a position: "I have seen nothing of this epoch".
    return p === undefined || p.epoch === "" ? undefined : { epoch: p.epoch, seq: p.seq };
  }

  position(channel: string): Position | undefined {
    const p = this.positions.get(channel);
    return p === undefined ? undefined : { epoch: p.epoch, seq: p.seq };
  }

  setConflated(channel: string, conflated: boolean): void {
    const p = this.positions.get(channel);
    if (p !== undefined) p.conflated = conflated;
  }

  /**
   * Record a `subscribed` reply. `sentSince` is what the subscribe carried.
   * - `recovered: true`: keep our position; the replay that follows moves it.
   * - `recovered: false`, or a fresh subscribe after we had state: reset to the
   *   server's position; the snapshot (if any) follows.
   */
  onSubscribed(channel: string, frame: SubscribedFrame, sentSince: Position | undefined, conflated: boolean): SubscribeOutcome {
    const had = this.positions.get(channel);
    if (sentSince !== undefined && frame.recovered === true && had !== undefined && had.epoch === frame.epoch) {
      had.conflated = conflated;
      this.stats.recovered += 1;
      return "recovered";
    }
    this.positions.set(channel, { epoch: frame.epoch, seq: frame.seq, conflated });
    if (sentSince !== undefined || had !== undefined) {
      this.stats.resets += 1;
      return "reset";
    }
    return "fresh";
  }

  /** Judge a message and, when it is to be applied, advance the position. */
  onMessage(channel: string, frame: MessageFrame): MessageVerdict {
    if (frame.seq === undefined || frame.epoch === undefined) {
      this.stats.applied += 1;
      return "apply"; // the `user` channel: no history
    }
    const p = this.positions.get(channel);
    if (p === undefined) {
      this.positions.set(channel, { epoch: frame.epoch, seq: frame.seq, conflated: false });
      this.stats.applied += 1;
      return "apply";
    }
    if (frame.snapshot === true) {
      // The state to start from after `subscribed`; its seq may be below the position.
      if (frame.epoch === p.epoch) p.seq = Math.max(p.seq, frame.seq);
      else {
        p.epoch = frame.epoch;
        p.seq = frame.seq;
      }
      this.stats.applied += 1;
      return "apply";
    }
    if (frame.epoch !== p.epoch) {
      this.stats.gaps += 1;
      return "epoch";
    }
    if (frame.seq <= p.seq) {
      this.stats.duplicates += 1;
      return "duplicate";
    }
    if (frame.seq !== p.seq + 1 && !p.conflated) {
      this.stats.gaps += 1;
      return "gap";
    }
    p.seq = frame.seq;
    this.stats.applied += 1;
    return "apply";
  }

  forget(channel: string): void {
    this.positions.delete(channel);
  }
}
