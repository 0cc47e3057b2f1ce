/** The signed-in user's wallets: pending transactions and recent activity, live. */

import { useEffect, useState, type FormEvent } from "react";
import { cookie } from "../core/push";
import { injectedProvider, LinkError, linkWallet, type LinkStep, type LinkedWalletInfo } from "../core/linkWallet";
import { useWalletUpdates } from "../react/hooks";
import type { SecurityWarning, WalletUpdate } from "../stores/types";
import { shortHash } from "./format";

/** A wallet the panel follows; `label` as the user (or the dev chain) named it, "" when unknown. */
export interface LinkedWallet {
  address: string;
  label: string;
}

/** Wallets from the page, or from the wallets API when it exists; degrade to none. */
export function useLinkedWallets(initial: readonly string[], signedIn: boolean): LinkedWallet[] {
  const [wallets, setWallets] = useState<LinkedWallet[]>(() => initial.map((address) => ({ address, label: "" })));
  useEffect(() => {
    if (initial.length > 0 || !signedIn || typeof fetch !== "function") return;
    let cancelled = false;
    fetch("/api/wallets/", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : null))
      .then((body: unknown) => {
        // `{"wallets": [...]}` (wallets app), a DRF page `{"results": [...]}` or a bare list.
        const obj = body !== null && typeof body === "object" ? (body as { wallets?: unknown; results?: unknown }) : {};
        const list: unknown[] = Array.isArray(body) ? body : Array.isArray(obj.wallets) ? obj.wallets : Array.isArray(obj.results) ? obj.results : [];
        const linked = list.map(toLinked).filter((w): w is LinkedWallet => w !== null);
        if (!cancelled && linked.length > 0) setWallets(linked);
      })
      .catch(() => undefined); // the wallets API is optional for the dashboard
    return () => {
      cancelled = true;
    };
  }, [initial.join(","), signedIn]);
  return wallets;
}

function toLinked(w: unknown): LinkedWallet | null {
  if (typeof w === "string") return { address: w, label: "" };
  const { address, label } = (w ?? {}) as { address?: unknown; label?: unknown };
  return typeof address === "string" ? { address, label: typeof label === "string" ? label : "" } : null;
}

export function WalletPanel({ wallets: linked, signedIn }: { wallets: readonly string[]; signedIn: boolean }) {
  const wallets = useLinkedWallets(linked, signedIn);
  const [extra, setExtra] = useState<string[]>([]);
  const [fresh, setFresh] = useState<LinkedWallet[]>([]);
  const [input, setInput] = useState("");
  const labels = new Map([...wallets, ...fresh].map((w) => [w.address.toLowerCase(), w.label]));
  // One panel per address whatever its case (the API's is EIP-55, a typed one may not be).
  const all = [...new Map([...wallets.map((w) => w.address), ...fresh.map((w) => w.address), ...extra].map((a) => [a.toLowerCase(), a])).values()];
  const add = (e: FormEvent) => {
    e.preventDefault();
    const value = input.trim();
    if (/^0x[0-9a-fA-F]{40}$/.test(value)) setExtra((x) => [...x, value]);
    setInput("");
  };
  return (
    <section className="card wallets" aria-labelledby="wallets-title">
      <header>
        <h2 id="wallets-title">Wallet activity</h2>
      </header>
      {!signedIn ? <p className="muted">Sign in to follow your wallets.</p> : null}
      {signedIn && all.length === 0 ? <p className="muted">No linked wallet yet.</p> : null}
      {all.map((address) => (
        <Wallet key={address.toLowerCase()} address={address} label={labels.get(address.toLowerCase()) ?? ""} />
      ))}
      {signedIn ? <LinkWalletButton onLinked={(w) => setFresh((x) => [...x, { address: w.address, label: w.label }])} /> : null}
      {signedIn ? (
        <form onSubmit={add} className="inline">
          <input value={input} onChange={(e) => setInput(e.target.value)} placeholder="0x… linked address" aria-label="Wallet address" data-testid="wallet-input" />
          <button type="submit">Follow</button>
        </form>
      ) : null}
    </section>
  );
}

const STEPS: Record<LinkStep, string> = {
  accounts: "Choose an account in your wallet…",
  chain: "Checking your wallet's chain…",
  challenge: "Preparing the sign-in message…",
  sign: "Sign the message in your wallet (it costs nothing and sends no transaction)…",
  verify: "Checking the signature…",
};

type LinkState = { state: "idle" } | { state: "busy"; text: string } | { state: "error"; code: string; text: string } | { state: "done"; text: string };

/** "Link a wallet": Sign-In with Ethereum through the page's wallet (`window.ethereum`). */
function LinkWalletButton({ onLinked }: { onLinked: (wallet: LinkedWalletInfo) => void }) {
  const [status, setStatus] = useState<LinkState>({ state: "idle" });
  const busy = status.state === "busy";
  const start = () => {
    if (busy) return;
    setStatus({ state: "busy", text: STEPS.accounts });
    linkWallet({
      provider: injectedProvider(),
      fetch: window.fetch.bind(window),
      csrfToken: () => cookie("csrftoken", document.cookie),
      onStep: (step) => setStatus({ state: "busy", text: STEPS[step] }),
    })
      .then((wallet) => {
        setStatus({ state: "done", text: `Linked ${shortHash(wallet.address)}: its activity appears below.` });
        onLinked(wallet);
      })
      .catch((err: unknown) => {
        const e = err instanceof LinkError ? err : new LinkError("wallet_error", `Linking failed: ${String(err)}`);
        setStatus({ state: "error", code: e.code, text: e.message });
      });
  };
  return (
    <div className="link-wallet" data-testid="wallet-link" data-state={status.state} data-code={status.state === "error" ? status.code : ""}>
      <button type="button" onClick={start} disabled={busy} data-testid="wallet-link-button">
        Link a wallet
      </button>
      {status.state !== "idle" ? (
        <p className={status.state === "error" ? "warn" : "muted"} role={status.state === "error" ? "alert" : "status"} data-testid="wallet-link-status">
          {status.text}
        </p>
      ) : null}
    </div>
  );
}

function describe(u: WalletUpdate): string {
  const d = u.data;
  switch (u.type) {
    case "transaction":
      return `tx ${shortHash(d.hash)} ${String(d.status ?? "")}${d.confirmations !== undefined && d.required !== undefined ? ` (${d.confirmations}/${d.required})` : ""}`;
    case "balance":
      return `balance ${String(d.symbol ?? d.token ?? "")} ${String(d.balance ?? d.delta ?? "")}`;
    case "approval":
      return `approval ${String(d.symbol ?? d.token ?? "")} → ${shortHash(d.spender)}`;
    case "nft":
      return `NFT ${shortHash(d.token ?? d.contract)} #${String(d.token_id ?? d.tokenId ?? "")}`;
    default:
      return u.type;
  }
}

function Wallet({ address, label }: { address: string; label: string }) {
  const w = useWalletUpdates(address);
  if (w === null) return null;
  return (
    <div className="wallet" data-testid={`wallet-${address}`}>
      <h3 title={address}>
        {label !== "" ? <span className="wallet-label">{label} </span> : null}
        <span className={label !== "" ? "muted" : undefined}>{shortHash(address)}</span>
      </h3>
      {w.status === "error" ? <p className="warn">{w.error?.code === "forbidden" ? "Not one of your linked wallets." : `Unavailable (${w.error?.code}).`}</p> : null}
      {w.warnings.length > 0 ? (
        <ul className="security-warnings" aria-label="Dangerous approvals">
          {w.warnings.map((warning) => (
            <Warning key={warning.id} warning={warning} />
          ))}
        </ul>
      ) : null}
      {w.pendingTxs.length > 0 ? (
        <div>
          <h4>Pending</h4>
          <ul>
            {w.pendingTxs.map((tx) => (
              <li key={tx.hash} className="pending">
                {shortHash(tx.hash)} · {tx.status}
                {tx.confirmations !== undefined && tx.required !== undefined ? ` · ${tx.confirmations}/${tx.required}` : ""}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {w.recentActivity.length > 0 ? <h4>Recent</h4> : null}
      <ul className="activity">
        {w.recentActivity.slice(0, 10).map((u, i) => (
          <li key={`${u.type}-${String(u.data.hash ?? i)}-${i}`}>{describe(u)}</li>
        ))}
        {w.recentActivity.length === 0 && w.status === "active" ? <li className="muted">No activity yet.</li> : null}
      </ul>
    </div>
  );
}

const REASONS: Record<string, string> = {
  unlimited: "Unlimited approval",
  above_balance: "Approval above your balance",
  approval_for_all: "Approval for every NFT",
};

/** A dangerous approval: who may spend what, how much, and how to revoke it. */
function Warning({ warning: w }: { warning: SecurityWarning }) {
  const what = w.symbol !== "" ? w.symbol : shortHash(w.token);
  const amount = w.standard === "operator" ? "every token of the collection" : w.unlimited === true ? "unlimited" : `${String(w.amount ?? w.amount_raw ?? "")} ${what}`;
  const spender = w.spender_name ?? shortHash(w.spender);
  return (
    <li className={`security-warning ${w.level ?? "high"}`} data-testid="security-warning" data-level={w.level ?? ""}>
      <strong>{REASONS[w.reason ?? ""] ?? "Dangerous approval"}</strong> of {what} to{" "}
      <span title={w.spender}>{spender}</span>
      {w.known_spender ? null : <span className="warn"> (unknown contract)</span>} · amount: {amount}
      <div className="muted revoke" title={w.revoke.data}>
        {w.revoke.text}
      </div>
    </li>
  );
}
