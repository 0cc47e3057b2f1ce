/** The React hooks: thin adapters over the stores with useSyncExternalStore. */

import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from "react";
import type { ConnectionStatus } from "../core/client";
import type { RealtimeError } from "../core/codes";
import type { ChannelSnapshot } from "../stores/channel";
import type { NotificationsSnapshot } from "../stores/notifications";
import type { PriceView } from "../stores/prices";
import type { WalletState } from "../stores/wallet";
import { useRealtime } from "./context";

export interface ConnectionInfo extends ConnectionStatus {
  connected: boolean;
  connecting: boolean;
}

/** Connection state, retry countdown, RTT and quality; re-renders only when they change. */
export function useConnectionStatus(): ConnectionInfo {
  const { client } = useRealtime();
  const subscribe = useCallback((fn: () => void) => client.on("status", fn), [client]);
  const status = useSyncExternalStore(subscribe, () => client.getStatus(), () => client.getStatus());
  return useMemo(
    () => ({ ...status, connected: status.state === "open", connecting: status.state === "connecting" || status.state === "reconnecting" }),
    [status],
  );
}

export interface PriceStream {
  prices: Record<string, PriceView>;
  loading: boolean;
  error: RealtimeError | null;
  simulated: boolean;
  subscribe: (symbol: string) => void;
  unsubscribe: (symbol: string) => void;
}

/** Live prices of `symbols` (plus any added with `subscribe`), coalesced to one render per frame. */
export function usePriceStream(symbols: readonly string[]): PriceStream {
  const { prices: store } = useRealtime();
  const [extra, setExtra] = useState<string[]>([]);
  const [removed, setRemoved] = useState<string[]>([]);
  const wanted = useMemo(() => {
    const all = [...symbols, ...extra].map((s) => s.toUpperCase());
    return [...new Set(all)].filter((s) => !removed.includes(s));
  }, [symbols.join(","), extra, removed]);
  useEffect(() => store.watch(wanted), [store, wanted.join(",")]);
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  const subscribe = useCallback((symbol: string) => {
    const s = symbol.toUpperCase();
    setRemoved((r) => r.filter((x) => x !== s));
    setExtra((e) => (e.includes(s) ? e : [...e, s]));
  }, []);
  const unsubscribe = useCallback((symbol: string) => {
    const s = symbol.toUpperCase();
    setExtra((e) => e.filter((x) => x !== s));
    setRemoved((r) => (r.includes(s) ? r : [...r, s]));
  }, []);
  return useMemo(() => {
    const prices: Record<string, PriceView> = {};
    let error: RealtimeError | null = null;
    let loading = false;
    for (const s of wanted) {
      const view = snapshot.prices[s];
      if (view !== undefined) prices[s] = view;
      const err = snapshot.errors[s];
      if (err !== undefined) error ??= err;
      else if (view === undefined) loading = true;
    }
    return { prices, loading, error, simulated: snapshot.simulated, subscribe, unsubscribe };
  }, [snapshot, wanted, subscribe, unsubscribe]);
}

export interface WalletUpdates extends WalletState {
  subscribe: () => void;
  unsubscribe: () => void;
}

/** Live activity of one linked wallet (`wallet:{address}`); null address: nothing. */
export function useWalletUpdates(address: string | null): WalletUpdates | null {
  const realtime = useRealtime();
  const [paused, setPaused] = useState(false);
  const store = address === null ? null : realtime.wallet(address);
  useEffect(() => (store === null || paused ? undefined : store.watch()), [store, paused]);
  const noop = useCallback(() => () => undefined, []);
  const state = useSyncExternalStore(store?.subscribe ?? noop, () => store?.getSnapshot() ?? null, () => store?.getSnapshot() ?? null);
  const subscribe = useCallback(() => setPaused(false), []);
  const unsubscribe = useCallback(() => setPaused(true), []);
  return useMemo(() => (state === null ? null : { ...state, subscribe, unsubscribe }), [state, subscribe, unsubscribe]);
}

export interface NotificationsApi extends NotificationsSnapshot {
  markAsRead: (id: string) => Promise<void>;
  markAllRead: () => Promise<void>;
  dismiss: (id: string) => Promise<void>;
}

/** Notifications and announcements with an unread count; actions are optimistic. */
export function useNotifications(): NotificationsApi {
  const { notifications: store } = useRealtime();
  useEffect(() => store.watch(), [store]);
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  const markAsRead = useCallback((id: string) => store.markAsRead(id), [store]);
  const markAllRead = useCallback(() => store.markAllRead(), [store]);
  const dismiss = useCallback((id: string) => store.dismiss(id), [store]);
  return useMemo(() => ({ ...snapshot, markAsRead, markAllRead, dismiss }), [snapshot, markAsRead, markAllRead, dismiss]);
}

/** The latest value of a snapshot channel, for example `useChannel<MarketOverview>("market:overview")`. */
export function useChannel<T>(channel: string): ChannelSnapshot<T> {
  const realtime = useRealtime();
  const store = realtime.channel<T>(channel);
  useEffect(() => store.watch(), [store]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}
