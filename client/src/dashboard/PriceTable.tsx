/** Live price table with change colouring and sparklines. */

import { useRealtime } from "../react/context";
import { usePriceStream } from "../react/hooks";
import { ago, bigMoney, percent, price } from "./format";
import { Sparkline } from "./Sparkline";

export function PriceTable({ symbols }: { symbols: readonly string[] }) {
  const { prices, loading, error, simulated } = usePriceStream(symbols);
  const { client } = useRealtime();
  const now = client.serverNow();
  return (
    <section className="card prices" aria-labelledby="prices-title">
      <header>
        <h2 id="prices-title">Prices</h2>
        {simulated ? (
          <span className="label simulated" data-testid="simulated-label" title="No live market source: these prices come from the simulated market.">
            Simulated
          </span>
        ) : null}
        {loading && Object.keys(prices).length === 0 ? <span className="muted">loading…</span> : null}
      </header>
      {error !== null ? <p className="warn">Prices unavailable ({error.code}).</p> : null}
      <table data-testid="price-table">
        <thead>
          <tr>
            <th>Symbol</th>
            <th className="num">Price</th>
            <th className="num">24 h</th>
            <th className="num">Volume</th>
            <th>Trend</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {symbols.map((symbol) => {
            const p = prices[symbol.toUpperCase()];
            const change = p?.change24h;
            return (
              <tr key={symbol} data-testid={`price-row-${symbol}`} className={p?.direction === "up" ? "tick-up" : p?.direction === "down" ? "tick-down" : ""}>
                <td className="sym">
                  {symbol}
                  {p?.stale ? <span className="label stale">stale</span> : null}
                  {p?.degraded ? <span className="label stale">degraded</span> : null}
                </td>
                <td className={`num price ${p?.direction ?? ""}`} data-testid={`price-${symbol}`}>
                  {price(p?.price)}
                </td>
                <td className={`num ${change === undefined || change === null ? "" : change >= 0 ? "up" : "down"}`}>{percent(change)}</td>
                <td className="num">{bigMoney(p?.volume24h)}</td>
                <td>
                  <Sparkline points={p?.history ?? []} />
                </td>
                <td className="muted">{p === undefined ? "" : ago(p.timestamp, now)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}
