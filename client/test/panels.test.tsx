// @vitest-environment happy-dom
/** The dashboard survives null global figures ("—") and a panel that throws (issue #11). */
import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { WebSocketClient } from "../src/core/client";
import type { FrameScheduler } from "../src/core/throttle";
import { MarketOverview } from "../src/dashboard/MarketOverview";
import { PanelBoundary } from "../src/dashboard/PanelBoundary";
import { percent, price, share } from "../src/dashboard/format";
import { WebSocketProvider } from "../src/react/context";
import { FakeEnv, FakeTimers, SocketFactoryFake, quietLogger, type FakeSocket } from "./fakes";

const microtask: FrameScheduler = (fn) => {
  let cancelled = false;
  queueMicrotask(() => {
    if (!cancelled) fn();
  });
  return () => {
    cancelled = true;
  };
};

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

function setup() {
  const sockets = new SocketFactoryFake();
  const client = new WebSocketClient({
    url: "ws://t/ws/",
    socketFactory: sockets.factory,
    timers: new FakeTimers(),
    env: new FakeEnv(),
    random: () => 0.5,
    logger: quietLogger,
  });
  return { sockets, client };
}

function subscribedAll(s: FakeSocket) {
  for (const f of s.ofType("subscribe")) s.deliver({ type: "subscribed", id: f.id, channel: f.channel, epoch: "e", seq: 0 });
}

const overview = {
  total_market_cap: null,
  total_volume: null,
  btc_dominance: null,
  top_gainers: [{ symbol: "SOL", price: 240, change24h: 7.5 }],
  top_losers: [{ symbol: "ETH", price: 3500, change24h: null }],
  recent_trades: [{ symbol: "BTC", price: 97000.5, qty: 0.25, side: "sell", time: 1, venue: "kraken" }],
  timestamp: 1,
  source: "aggregate",
};

describe("null figures", () => {
  it("format as a dash, never throw", () => {
    expect([price(null), percent(null), share(null), share(50.44)]).toEqual(["—", "—", "—", "50.4%"]);
  });

  it("the market panel shows — for global figures CoinGecko never gave", async () => {
    const { sockets, client } = setup();
    render(
      <WebSocketProvider client={client} scheduler={microtask}>
        <MarketOverview />
      </WebSocketProvider>,
    );
    const s = sockets.accept();
    await act(async () => {
      subscribedAll(s);
      s.deliver({ type: "message", channel: "market:overview", seq: 1, epoch: "e", snapshot: true, data: overview });
    });
    expect(screen.getByTestId("btc-dominance").textContent).toBe("—");
    expect(screen.getByTestId("market-cap").textContent).toBe("—");
    expect(screen.getByTestId("market-volume").textContent).toBe("—");
    expect(screen.getByText(/sell 0.25 BTC/).textContent).toContain("kraken");
  });
});

function Broken(): never {
  throw new TypeError("Cannot read properties of null (reading 'toFixed')");
}

describe("PanelBoundary", () => {
  it("contains a panel's crash: the other panels stay, the broken one can retry", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    let fail = true;
    function Flaky() {
      if (fail) Broken();
      return <p>market back</p>;
    }
    render(
      <>
        <PanelBoundary name="market">
          <Flaky />
        </PanelBoundary>
        <PanelBoundary name="prices">
          <p>prices still here</p>
        </PanelBoundary>
      </>,
    );
    expect(screen.getByTestId("panel-failed-market").textContent).toContain("market panel stopped working");
    expect(screen.getByText("prices still here")).toBeTruthy();
    fail = false;
    await act(async () => {
      screen.getByRole("button", { name: "Retry" }).click();
    });
    expect(screen.getByText("market back")).toBeTruthy();
  });
});

describe("PanelBoundary around a live panel", () => {
  it("Retry after a bad payload waits for a fresh snapshot instead of rendering the bad one again", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const { sockets, client } = setup();
    render(
      <WebSocketProvider client={client} scheduler={microtask}>
        <PanelBoundary name="market">
          <MarketOverview />
        </PanelBoundary>
      </WebSocketProvider>,
    );
    const s = sockets.accept();
    await act(async () => {
      subscribedAll(s);
      s.deliver({ type: "message", channel: "market:overview", seq: 1, epoch: "e", snapshot: true, data: overview });
    });
    await act(async () => {
      s.deliver({ type: "message", channel: "market:overview", seq: 2, epoch: "e", data: { ...overview, recent_trades: "garbage" } });
    });
    expect(screen.getByTestId("panel-failed-market")).toBeTruthy();
    const before = s.ofType("subscribe").length;
    await act(async () => {
      screen.getByRole("button", { name: "Retry" }).click();
    });
    expect(screen.queryByTestId("panel-failed-market")).toBeNull();
    expect(screen.getByText(/Waiting for the first overview/)).toBeTruthy();
    expect(s.ofType("subscribe").length).toBe(before + 1);
    await act(async () => {
      subscribedAll(s);
      s.deliver({ type: "message", channel: "market:overview", seq: 3, epoch: "e", snapshot: true, data: { ...overview, btc_dominance: 54.3 } });
    });
    expect(screen.getByTestId("btc-dominance").textContent).toBe("54.3%");
  });
});
