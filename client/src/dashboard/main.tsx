/** Entry point of the dashboard bundle: reads the page's config and mounts the app. */

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BatterySaver, DEFAULT_SLEEP_AFTER_MS } from "../core/battery";
import { WebSocketClient } from "../core/client";
import { browserEnv } from "../core/env";
import { browserPushDeps, PushOptIn } from "../core/push";
import { systemTimers } from "../core/timers";
import { WebSocketProvider } from "../react/context";
import { App, type DashboardConfig } from "./App";
import "./dashboard.css";

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

const root = document.getElementById("dashboard");
if (root !== null) {
  const config: DashboardConfig = {
    symbols: list(root.dataset.symbols).map((s) => s.toUpperCase()),
    wallets: list(root.dataset.wallets),
    signedIn: root.dataset.authenticated === "true",
    username: root.dataset.username ?? "",
    loginUrl: root.dataset.loginUrl,
    logoutUrl: root.dataset.logoutUrl,
    csrfToken: root.dataset.csrf,
  };
  // Quiet in production; `localStorage.realtimeDebug = 1` shows the client's debug log.
  const debug = (() => {
    try {
      return localStorage.getItem("realtimeDebug") === "1";
    } catch {
      return false;
    }
  })();
  const client = new WebSocketClient({ logger: { debug: debug ? console.debug.bind(console) : () => undefined, warn: console.warn.bind(console) } });
  const push = new PushOptIn(browserPushDeps());
  // Battery mode: hidden for a while with push on, the socket closes; visible, it resumes
  // with `since`. `data-battery-sleep-ms` (or localStorage.realtimeBatterySleepMs) sets the delay.
  const sleepAfterMs = Number((() => {
    try {
      return localStorage.getItem("realtimeBatterySleepMs") ?? root.dataset.batterySleepMs ?? DEFAULT_SLEEP_AFTER_MS;
    } catch {
      return root.dataset.batterySleepMs ?? DEFAULT_SLEEP_AFTER_MS;
    }
  })());
  const battery = new BatterySaver(client, {
    env: browserEnv(),
    timers: systemTimers,
    canSleep: () => push.enabled,
    sleepAfterMs: Number.isFinite(sleepAfterMs) ? sleepAfterMs : DEFAULT_SLEEP_AFTER_MS,
  });
  if (config.signedIn) battery.start();
  // A handle for support and for the browser tests (read-only inspection).
  (window as unknown as { __realtime: unknown }).__realtime = { client, push, battery };
  createRoot(root).render(
    <StrictMode>
      <WebSocketProvider client={client}>
        <App config={config} push={config.signedIn ? push : undefined} />
      </WebSocketProvider>
    </StrictMode>,
  );
}
