/** Entry point of the dashboard bundle: reads the page's config and mounts the app. */

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { WebSocketClient } from "../core/client";
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
  // A handle for support and for the browser tests (read-only inspection).
  (window as unknown as { __realtime: unknown }).__realtime = { client };
  createRoot(root).render(
    <StrictMode>
      <WebSocketProvider client={client}>
        <App config={config} />
      </WebSocketProvider>
    </StrictMode>,
  );
}
