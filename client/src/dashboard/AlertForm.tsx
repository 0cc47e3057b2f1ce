/** Price alert creation (socket action `alerts.create`) and the user's rules (`alerts.list`). */

import { useEffect, useState, type FormEvent } from "react";
import type { RealtimeError } from "../core/codes";
import { useRealtime } from "../react/context";
import { useConnectionStatus } from "../react/hooks";

interface Rule {
  id: number;
  symbol: string | null;
  kind: string;
  threshold: number | string;
}

const KINDS = [
  ["price_above", "Price above"],
  ["price_below", "Price below"],
  ["price_cross", "Price crosses"],
] as const;

export function AlertForm({ symbols, signedIn }: { symbols: readonly string[]; signedIn: boolean }) {
  const { client } = useRealtime();
  const { connected } = useConnectionStatus();
  const [symbol, setSymbol] = useState(symbols[0] ?? "BTC");
  const [kind, setKind] = useState<string>("price_above");
  const [threshold, setThreshold] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [rules, setRules] = useState<Rule[] | null>(null);

  useEffect(() => {
    if (!signedIn || !connected) return;
    client
      .request<{ rules?: Rule[] }>("alerts.list", {})
      .then((r) => setRules(Array.isArray(r?.rules) ? r.rules : []))
      .catch(() => setRules(null)); // alerts app not available: the form still explains errors
  }, [client, signedIn, connected]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const value = Number(threshold);
    if (!Number.isFinite(value) || threshold.trim() === "") {
      setMessage({ ok: false, text: "Enter a number." });
      return;
    }
    try {
      const reply = await client.request<{ rule?: Rule }>("alerts.create", { symbol, kind, threshold: value });
      setMessage({ ok: true, text: `Alert created: ${symbol} ${kind.replace("_", " ")} ${value}` });
      setThreshold("");
      if (reply?.rule !== undefined) setRules((r) => [reply.rule as Rule, ...(r ?? [])]);
    } catch (err) {
      const e2 = err as RealtimeError;
      setMessage({ ok: false, text: e2.code === "unknown_type" ? "Alerts are not available on this server yet." : `${e2.message} (${e2.code})` });
    }
  };

  const remove = async (id: number) => {
    try {
      await client.request("alerts.delete", { rule_id: id });
      setRules((r) => (r ?? []).filter((x) => x.id !== id));
    } catch (err) {
      setMessage({ ok: false, text: `Could not delete (${(err as RealtimeError).code})` });
    }
  };

  return (
    <section className="card alerts" aria-labelledby="alerts-title">
      <header>
        <h2 id="alerts-title">Price alert</h2>
      </header>
      {!signedIn ? (
        <p className="muted">Sign in to create alerts.</p>
      ) : (
        <form onSubmit={submit} className="alert-form" data-testid="alert-form">
          <select value={symbol} onChange={(e) => setSymbol(e.target.value)} aria-label="Symbol">
            {symbols.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
          <select value={kind} onChange={(e) => setKind(e.target.value)} aria-label="Kind">
            {KINDS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
          <input value={threshold} onChange={(e) => setThreshold(e.target.value)} inputMode="decimal" placeholder="threshold" aria-label="Threshold" />
          <button type="submit">Create</button>
        </form>
      )}
      {message !== null ? (
        <p className={message.ok ? "ok" : "warn"} data-testid="alert-message">
          {message.text}
        </p>
      ) : null}
      {rules !== null && rules.length > 0 ? (
        <ul className="rules">
          {rules.map((r) => (
            <li key={r.id}>
              {r.symbol ?? "portfolio"} {r.kind.replace("_", " ")} {String(r.threshold)}{" "}
              <button className="link" onClick={() => void remove(r.id)} aria-label="Delete alert">
                ✕
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
