// @vitest-environment happy-dom
import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketClient } from "../src/core/client";
import type { FrameScheduler } from "../src/core/throttle";
import { WebSocketProvider } from "../src/react/context";
import { useChannel, useConnectionStatus, useNotifications, usePriceStream, useWalletUpdates } from "../src/react/hooks";
import { FakeEnv, FakeTimers, SocketFactoryFake, flush, quietLogger, type FakeSocket } from "./fakes";

const microtask: FrameScheduler = (fn) => {
  let cancelled = false;
  queueMicrotask(() => {
    if (!cancelled) fn();
  });
  return () => {
    cancelled = true;
  };
};

function setup() {
  const timers = new FakeTimers();
  const sockets = new SocketFactoryFake();
  const env = new FakeEnv();
  const client = new WebSocketClient({ url: "ws://t/ws/", socketFactory: sockets.factory, timers, env, random: () => 0.5, logger: quietLogger });
  return { timers, sockets, env, client };
}

function subscribedAll(s: FakeSocket, epoch = "e", seq = 0) {
  for (const f of s.ofType("subscribe")) {
    const channel = String(f.channel).startsWith("prices:") ? String(f.channel).toUpperCase() : String(f.channel);
    s.deliver({ type: "subscribed", id: f.id, channel, epoch, seq });
  }
}

afterEach(() => cleanup());

function Status() {
  const st = useConnectionStatus();
  return <div data-testid="status">{`${st.state}|${st.connected}|${st.connecting}|${st.user?.id ?? "-"}`}</div>;
}

describe("WebSocketProvider + useConnectionStatus", () => {
  it("connects on mount, follows the state, disconnects on unmount", async () => {
    const { client, sockets, timers } = setup();
    const view = render(
      <WebSocketProvider client={client} scheduler={microtask}>
        <Status />
      </WebSocketProvider>,
    );
    expect(screen.getByTestId("status").textContent).toBe("connecting|false|true|-");
    await act(async () => {
      sockets.accept({ user: { id: 3 } });
    });
    expect(screen.getByTestId("status").textContent).toBe("open|true|false|3");
    await act(async () => {
      sockets.current.serverClose(1012);
    });
    expect(screen.getByTestId("status").textContent).toBe("reconnecting|false|true|3");
    await act(async () => timers.advance(5000));
    view.unmount();
    expect(client.state).toBe("closed");
  });
});

function Prices({ symbols }: { symbols: string[] }) {
  const { prices, loading, error, simulated } = usePriceStream(symbols);
  return (
    <div data-testid="prices">
      {`${loading ? "loading" : "ready"}|${error?.code ?? ""}|${simulated ? "sim" : ""}|`}
      {Object.values(prices)
        .map((p) => `${p.symbol}=${p.price}${p.direction === "up" ? "+" : p.direction === "down" ? "-" : ""}(${p.history.length})`)
        .join(",")}
    </div>
  );
}

describe("usePriceStream", () => {
  it("subscribes per symbol, shows loading, then coalesced live prices with direction and history", async () => {
    const { client, sockets } = setup();
    render(
      <WebSocketProvider client={client} scheduler={microtask}>
        <Prices symbols={["btc", "ETH"]} />
      </WebSocketProvider>,
    );
    const s = sockets.accept();
    expect(s.ofType("subscribe").map((f) => f.channel)).toEqual(["prices:BTC", "prices:ETH"]);
    await act(async () => subscribedAll(s));
    expect(screen.getByTestId("prices").textContent).toBe("loading|||");
    await act(async () => {
      s.deliver({ type: "message", channel: "prices:BTC", seq: 1, epoch: "e", data: { symbol: "BTC", price: 100, source: "aggregate" } });
      s.deliver({ type: "message", channel: "prices:ETH", seq: 1, epoch: "e", data: { symbol: "ETH", price: 10, source: "simulated" } });
      for (let i = 2; i <= 40; i++) s.deliver({ type: "message", channel: "prices:BTC", seq: i, epoch: "e", data: { symbol: "BTC", price: 100 + i } });
      s.deliver({ type: "message", channel: "prices:BTC", seq: 41, epoch: "e", data: { symbol: "BTC", price: 50 } });
    });
    expect(screen.getByTestId("prices").textContent).toBe("ready||sim|BTC=50-(41),ETH=10(1)");
  });

  it("reports a channel error without breaking the others", async () => {
    const { client, sockets } = setup();
    render(
      <WebSocketProvider client={client} scheduler={microtask}>
        <Prices symbols={["BTC"]} />
      </WebSocketProvider>,
    );
    const s = sockets.accept();
    await act(async () => {
      s.deliver({ type: "error", id: s.last("subscribe").id, code: "not_found", message: "unknown channel namespace" });
    });
    expect(screen.getByTestId("prices").textContent).toBe("ready|not_found||");
    expect(client.state).toBe("open");
  });
});

function Bell() {
  const { notifications, unreadCount, markAsRead, markAllRead, dismiss, lastError } = useNotifications();
  return (
    <div>
      <span data-testid="badge">{unreadCount}</span>
      <span data-testid="err">{lastError?.code ?? ""}</span>
      <ul>
        {notifications.map((n) => (
          <li key={n.id} data-testid={`n-${n.id}`}>
            {n.title}
            {n.read_at === null ? " (unread)" : ""}
            <button onClick={() => void markAsRead(n.id).catch(() => undefined)}>read {n.id}</button>
            <button onClick={() => void dismiss(n.id).catch(() => undefined)}>dismiss {n.id}</button>
          </li>
        ))}
      </ul>
      <button onClick={() => void markAllRead().catch(() => undefined)}>all</button>
    </div>
  );
}

const note = (id: string, title: string, created_at: number) => ({ id, type: "system", title, priority: "medium", created_at, read_at: null });

describe("useNotifications", () => {
  async function mounted() {
    const ctx = setup();
    render(
      <WebSocketProvider client={ctx.client} scheduler={microtask}>
        <Bell />
      </WebSocketProvider>,
    );
    const s = ctx.sockets.accept({ user: { id: 1 } });
    expect(s.ofType("subscribe").map((f) => f.channel)).toEqual(["notifications", "announcements"]);
    await act(async () => {
      subscribedAll(s);
      s.deliver({ type: "message", channel: "notifications", seq: 0, epoch: "e", snapshot: true, data: { event: "snapshot", unread_count: 2, notifications: [note("n:1", "First", 1)] } });
      s.deliver({ type: "message", channel: "announcements", seq: 0, epoch: "e", snapshot: true, data: { event: "snapshot", unread_count: 2, notifications: [note("a:1", "Maintenance", 2)] } });
    });
    return { ...ctx, s };
  }

  it("merges both channels, counts unread, applies created/read events", async () => {
    const { s } = await mounted();
    expect(screen.getByTestId("badge").textContent).toBe("2");
    await act(async () => {
      s.deliver({ type: "message", channel: "notifications", seq: 1, epoch: "e", data: { event: "created", notification: note("n:2", "Payment received", 3) } });
    });
    expect(screen.getByTestId("badge").textContent).toBe("3");
    await act(async () => {
      s.deliver({ type: "message", channel: "notifications", seq: 2, epoch: "e", data: { event: "read", ids: ["n:2"], unread_count: 2 } });
    });
    expect(screen.getByTestId("badge").textContent).toBe("2");
    expect(screen.getByTestId("n-n:2").textContent).not.toContain("(unread)");
  });

  it("marks read optimistically and confirms with the reply", async () => {
    const { s } = await mounted();
    await act(async () => screen.getByText("read n:1").click());
    expect(screen.getByTestId("badge").textContent).toBe("1"); // before any reply
    expect(screen.getByTestId("n-n:1").textContent).not.toContain("(unread)");
    const req = s.last("notifications.mark_read");
    expect(req.notification_id).toBe("n:1");
    await act(async () => {
      s.deliver({ type: "reply", id: req.id, request: "notifications.mark_read", data: { unread_count: 1 } });
      // The server's own event for the same change arrives too: nothing is counted twice.
      s.deliver({ type: "message", channel: "notifications", seq: 1, epoch: "e", data: { event: "read", ids: ["n:1"], unread_count: 1 } });
    });
    expect(screen.getByTestId("badge").textContent).toBe("1");
  });

  it("rolls back on a server error", async () => {
    const { s } = await mounted();
    await act(async () => screen.getByText("dismiss a:1").click());
    expect(screen.queryByTestId("n-a:1")).toBeNull();
    expect(screen.getByTestId("badge").textContent).toBe("1");
    await act(async () => {
      s.deliver({ type: "error", id: s.last("notifications.dismiss").id, code: "not_found", message: "no such notification" });
      await flush();
    });
    expect(screen.getByTestId("n-a:1")).toBeTruthy();
    expect(screen.getByTestId("badge").textContent).toBe("2");
    expect(screen.getByTestId("err").textContent).toBe("not_found");
  });

  it("rolls back on timeout", async () => {
    const { timers } = await mounted();
    await act(async () => screen.getByText("all").click());
    expect(screen.getByTestId("badge").textContent).toBe("0");
    await act(async () => {
      timers.advance(10_000);
      await flush();
    });
    expect(screen.getByTestId("badge").textContent).toBe("2");
    expect(screen.getByTestId("err").textContent).toBe("timeout");
  });
});

function Wallet({ address }: { address: string }) {
  const w = useWalletUpdates(address);
  if (w === null) return null;
  return <div data-testid="wallet">{`${w.status}|pending=${w.pendingTxs.map((t) => t.hash).join(",")}|activity=${w.recentActivity.length}|balances=${w.balanceChanges.length}|warnings=${w.warnings.map((x) => x.reason).join(",")}`}</div>;
}

const revoke = { method: "approve(0x5, 0)", to: "0x7", data: "0x095ea7b3", text: "Revoke it" };
function warning(id: string, state: "active" | "cleared", reason: string) {
  return { id, kind: "approval", state, reason, level: "urgent", standard: "erc20", chain: 1, token: "0x7", symbol: "TT", spender: "0x5", spender_name: null, known_spender: false, hash: "0xh", revoke };
}

describe("useWalletUpdates", () => {
  it("tracks pending transactions until final, activity, balance changes and reorg removals", async () => {
    const { client, sockets } = setup();
    const addr = "0x52908400098527886E0F7030069857D2E4169EE7";
    render(
      <WebSocketProvider client={client} scheduler={microtask}>
        <Wallet address={addr} />
      </WebSocketProvider>,
    );
    const s = sockets.accept({ user: { id: 1 } });
    const tx = (hash: string, status: string, seq: number, extra: Record<string, unknown> = {}) =>
      s.deliver({ type: "message", channel: `wallet:${addr}`, seq, epoch: "e", data: { type: "transaction", address: addr, chain: 1, timestamp: seq, data: { hash, status, ...extra } } });
    await act(async () => {
      subscribedAll(s);
      s.deliver({ type: "message", channel: `wallet:${addr}`, seq: 0, epoch: "e", snapshot: true, data: { type: "snapshot", address: addr, activity: [], pending: [{ hash: "0xa", status: "pending" }], balances: [] } });
      tx("0xb", "pending", 1);
      tx("0xa", "confirmed", 2);
      s.deliver({ type: "message", channel: `wallet:${addr}`, seq: 3, epoch: "e", data: { type: "balance", address: addr, chain: 1, timestamp: 3, data: { token: "ETH", delta: "1" } } });
    });
    expect(screen.getByTestId("wallet").textContent).toBe("active|pending=0xb|activity=3|balances=1|warnings=");
    await act(async () => tx("0xb", "included", 4, { removed: true }));
    expect(screen.getByTestId("wallet").textContent).toBe("active|pending=|activity=2|balances=1|warnings=");
  });

  it("keeps dangerous approvals from the snapshot and security frames until revoked", async () => {
    const { client, sockets } = setup();
    const addr = "0x52908400098527886E0F7030069857D2E4169EE7";
    render(
      <WebSocketProvider client={client} scheduler={microtask}>
        <Wallet address={addr} />
      </WebSocketProvider>,
    );
    const s = sockets.accept({ user: { id: 1 } });
    const security = (seq: number, data: Record<string, unknown>) =>
      s.deliver({ type: "message", channel: `wallet:${addr}`, seq, epoch: "e", data: { type: "security", address: addr, chain: 1, timestamp: seq, data } });
    await act(async () => {
      subscribedAll(s);
      s.deliver({ type: "message", channel: `wallet:${addr}`, seq: 0, epoch: "e", snapshot: true, data: { type: "snapshot", address: addr, activity: [], pending: [], balances: [], warnings: [warning("a", "active", "unlimited")] } });
      security(1, warning("b", "active", "approval_for_all"));
      security(2, { id: "junk" }); // malformed: ignored
    });
    expect(screen.getByTestId("wallet").textContent).toBe("active|pending=|activity=0|balances=0|warnings=approval_for_all,unlimited");
    await act(async () => security(3, warning("a", "cleared", "unlimited")));
    expect(screen.getByTestId("wallet").textContent).toBe("active|pending=|activity=0|balances=0|warnings=approval_for_all");
  });

  it("shows forbidden for a wallet that is not the user's", async () => {
    const { client, sockets } = setup();
    render(
      <WebSocketProvider client={client} scheduler={microtask}>
        <Wallet address="0x0000000000000000000000000000000000000001" />
      </WebSocketProvider>,
    );
    const s = sockets.accept();
    await act(async () => s.deliver({ type: "error", id: s.last("subscribe").id, code: "forbidden", message: "no" }));
    expect(screen.getByTestId("wallet").textContent).toContain("error|");
  });
});

function Overview() {
  const { data, status } = useChannel<{ total_market_cap: number }>("market:overview");
  return <div data-testid="ov">{`${status}|${data?.total_market_cap ?? "-"}`}</div>;
}

describe("useChannel", () => {
  it("holds the latest value of a snapshot channel", async () => {
    const { client, sockets } = setup();
    render(
      <WebSocketProvider client={client} scheduler={microtask}>
        <Overview />
      </WebSocketProvider>,
    );
    const s = sockets.accept();
    await act(async () => {
      subscribedAll(s);
      s.deliver({ type: "message", channel: "market:overview", seq: 0, epoch: "e", snapshot: true, data: { total_market_cap: 5 } });
    });
    expect(screen.getByTestId("ov").textContent).toBe("active|5");
  });
});
