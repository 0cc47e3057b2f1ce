/** Market overview: total cap, volume, BTC dominance, top movers, recent trades. */

import { useChannel } from "../react/hooks";
import type { MarketOverview as Overview } from "../stores/types";
import { bigMoney, percent, price, share } from "./format";

export function MarketOverview() {
  const { data, status, error } = useChannel<Overview>("market:overview");
  return (
    <section className="card market" aria-labelledby="market-title">
      <header>
        <h2 id="market-title">Market</h2>
        {data?.source === "simulated" ? <span className="label simulated">Simulated</span> : null}
      </header>
      {status === "error" ? <p className="warn">Market overview unavailable ({error?.code}).</p> : null}
      {data === undefined && status !== "error" ? <p className="muted">Waiting for the first overview…</p> : null}
      {data !== undefined ? (
        <>
          <dl className="stats">
            <div>
              <dt>Market cap</dt>
              <dd data-testid="market-cap">{bigMoney(data.total_market_cap)}</dd>
            </div>
            <div>
              <dt>24 h volume</dt>
              <dd data-testid="market-volume">{bigMoney(data.total_volume)}</dd>
            </div>
            <div>
              <dt>BTC dominance</dt>
              <dd data-testid="btc-dominance">{share(data.btc_dominance)}</dd>
            </div>
          </dl>
          <div className="movers">
            <Movers title="Top gainers" rows={data.top_gainers} />
            <Movers title="Top losers" rows={data.top_losers} />
          </div>
          {data.recent_trades !== undefined && data.recent_trades.length > 0 ? (
            <ul className="trades">
              {data.recent_trades.slice(0, 6).map((t, i) => (
                <li key={`${t.time}-${i}`} className={t.side === "buy" ? "up" : "down"}>
                  {t.side} {t.qty} {t.symbol} @ {price(t.price)}
                  {t.venue ? <span className="muted"> · {t.venue}</span> : null}
                </li>
              ))}
            </ul>
          ) : null}
        </>
      ) : null}
    </section>
  );
}

function Movers({ title, rows }: { title: string; rows: Overview["top_gainers"] }) {
  return (
    <div>
      <h3>{title}</h3>
      <ul>
        {(rows ?? []).slice(0, 5).map((r) => (
          <li key={r.symbol}>
            <span className="sym">{r.symbol}</span>{" "}
            <span className={(r.change24h ?? 0) >= 0 ? "up" : "down"}>{percent(r.change24h)}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
