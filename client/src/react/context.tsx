/** WebSocketProvider: one client per page, connected on mount, with the shared stores. */

import { createContext, useContext, useEffect, useMemo, type ReactNode } from "react";
import { WebSocketClient, type ClientOptions } from "../core/client";
import type { FrameScheduler } from "../core/throttle";
import { ChannelValueStore } from "../stores/channel";
import { NotificationStore } from "../stores/notifications";
import { PriceStore } from "../stores/prices";
import { WalletStore } from "../stores/wallet";

export interface Realtime {
  client: WebSocketClient;
  prices: PriceStore;
  notifications: NotificationStore;
  wallet(address: string): WalletStore;
  channel<T>(name: string): ChannelValueStore<T>;
}

const RealtimeContext = createContext<Realtime | null>(null);

export function createRealtime(client: WebSocketClient, scheduler?: FrameScheduler): Realtime {
  const wallets = new Map<string, WalletStore>();
  const channels = new Map<string, ChannelValueStore<unknown>>();
  return {
    client,
    prices: new PriceStore(client, scheduler),
    notifications: new NotificationStore(client, scheduler),
    wallet(address) {
      let store = wallets.get(address);
      if (store === undefined) {
        store = new WalletStore(client, address, scheduler);
        wallets.set(address, store);
      }
      return store;
    },
    channel<T>(name: string) {
      let store = channels.get(name);
      if (store === undefined) {
        store = new ChannelValueStore<unknown>(client, name, "conflate", scheduler);
        channels.set(name, store);
      }
      return store as ChannelValueStore<T>;
    },
  };
}

export interface WebSocketProviderProps {
  children?: ReactNode;
  /** Use this client (tests, or an app that owns it); otherwise one is built from `options`. */
  client?: WebSocketClient;
  options?: ClientOptions;
  /** UI update scheduler of the stores (default: one per animation frame). */
  scheduler?: FrameScheduler;
}

/** Connects on mount and disconnects on unmount; reconnection is automatic in between. */
export function WebSocketProvider({ children, client, options, scheduler }: WebSocketProviderProps) {
  // The client lives as long as the provider: options are read once, on purpose.
  const realtime = useMemo(() => createRealtime(client ?? new WebSocketClient(options), scheduler), [client]);
  useEffect(() => {
    realtime.client.connect();
    return () => realtime.client.disconnect();
  }, [realtime]);
  return <RealtimeContext.Provider value={realtime}>{children}</RealtimeContext.Provider>;
}

export function useRealtime(): Realtime {
  const value = useContext(RealtimeContext);
  if (value === null) throw new Error("useRealtime: wrap the component in <WebSocketProvider>");
  return value;
}
