/** The dashboard page: prices, market, wallets, notifications, alerts, connection status. */

import { AlertForm } from "./AlertForm";
import { ConnectionBadge } from "./ConnectionBadge";
import { MarketOverview } from "./MarketOverview";
import { NotificationBell } from "./NotificationBell";
import { PanelBoundary } from "./PanelBoundary";
import { PriceTable } from "./PriceTable";
import { WalletPanel } from "./WalletPanel";
import { CloseCode } from "../core/codes";
import type { PushOptIn } from "../core/push";
import { useConnectionStatus } from "../react/hooks";

export interface DashboardConfig {
  symbols: string[];
  wallets: string[];
  /** From the page (Django session); the welcome frame is the socket's own truth. */
  signedIn: boolean;
  username: string;
  /** The account pages (/accounts/): sign-in lands back here; sign-out is a POST. */
  loginUrl?: string;
  logoutUrl?: string;
  csrfToken?: string;
}

export function App({ config, push }: { config: DashboardConfig; push?: PushOptIn }) {
  const status = useConnectionStatus();
  // The page's session until the socket says otherwise: a socket whose session ended
  // (signed out in another tab) comes back anonymous, and the page follows it.
  const signedIn = status.state === "open" ? status.user !== null : config.signedIn;
  return (
    <div className="layout">
      <header className="top">
        <h1>Realtime markets</h1>
        <ConnectionBadge />
        <nav>
          {signedIn ? (
            <>
              <span className="muted" data-testid="account-user">{config.username || "signed in"}</span>
              <form method="post" action={config.logoutUrl ?? "/accounts/logout/"} className="inline">
                <input type="hidden" name="csrfmiddlewaretoken" value={config.csrfToken ?? ""} />
                <button type="submit" className="link" data-testid="sign-out">Sign out</button>
              </form>
            </>
          ) : (
            <>
              {config.signedIn && status.lastCloseCode === CloseCode.Unauthenticated ? (
                <span className="warn" data-testid="signed-out-notice">Your session ended</span>
              ) : null}
              <a href={config.loginUrl ?? "/accounts/login/?next=/"} data-testid="sign-in-link">Sign in</a>
            </>
          )}
          <a href="/api/docs/">API</a>
        </nav>
      </header>
      <main className="grid">
        <div className="col wide">
          <PanelBoundary name="prices">
            <PriceTable symbols={config.symbols} />
          </PanelBoundary>
          <PanelBoundary name="market">
            <MarketOverview />
          </PanelBoundary>
        </div>
        <div className="col">
          {signedIn ? (
            <PanelBoundary name="notifications">
              <NotificationBell push={push} />
            </PanelBoundary>
          ) : null}
          <PanelBoundary name="alerts">
            <AlertForm symbols={config.symbols} signedIn={signedIn} />
          </PanelBoundary>
          <PanelBoundary name="wallets">
            <WalletPanel wallets={config.wallets} signedIn={signedIn} />
          </PanelBoundary>
        </div>
      </main>
    </div>
  );
}
