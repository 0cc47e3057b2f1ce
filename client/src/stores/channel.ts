/** The latest value of one snapshot channel (for example `market:overview`). */

import type { ChannelStatus, WebSocketClient } from "../core/client";
import type { RealtimeError } from "../core/codes";
import type { Disposer } from "../core/emitter";
import type { FrameScheduler } from "../core/throttle";
import type { HiddenPolicy } from "../core/visibility";
import { Store } from "./store";

export interface ChannelSnapshot<T> {
  data: T | undefined;
  status: ChannelStatus;
  error: RealtimeError | null;
}

export class ChannelValueStore<T = unknown> extends Store<ChannelSnapshot<T>> {
  private data: T | undefined;
  private status: ChannelStatus = "pending";
  private error: RealtimeError | null = null;
  private dispose: Disposer | null = null;
  private watchers = 0;

  constructor(
    private readonly client: WebSocketClient,
    readonly channel: string,
    private readonly hiddenPolicy: HiddenPolicy = "conflate",
    scheduler?: FrameScheduler,
  ) {
    super(scheduler);
  }

  watch(): Disposer {
    this.watchers += 1;
    if (this.dispose === null) {
      this.dispose = this.client.subscribe(
        this.channel,
        {
          onMessage: (data) => {
            this.data = data as T;
            this.changed();
          },
          onStatus: (status, error) => {
            this.status = status;
            this.error = error;
            this.changed();
          },
        },
        { hiddenPolicy: this.hiddenPolicy },
      );
    }
    return () => {
      this.watchers -= 1;
      if (this.watchers === 0 && this.dispose !== null) {
        this.dispose();
        this.dispose = null;
        // Nobody keeps it current any more: the next watcher waits for the server's
        // snapshot instead of rendering an old value (a panel retried after a bad payload
        // would otherwise render that payload again and fail again).
        this.data = undefined;
        this.status = "pending";
        this.error = null;
        this.changed();
      }
    };
  }

  protected build(): ChannelSnapshot<T> {
    return { data: this.data, status: this.status, error: this.error };
  }
}
