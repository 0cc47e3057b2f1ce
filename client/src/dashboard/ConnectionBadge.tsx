/** Connection status: connected (RTT, quality) / reconnecting in N s / offline. */

import { useEffect, useState } from "react";
import { useRealtime } from "../react/context";
import { useConnectionStatus } from "../react/hooks";

export function ConnectionBadge() {
  const status = useConnectionStatus();
  const { client } = useRealtime();
  const [, tick] = useState(0);
  // The countdown moves without any event: re-render while a retry is scheduled.
  useEffect(() => {
    if (status.nextRetryAt === null) return;
    const handle = setInterval(() => tick((n) => n + 1), 250);
    return () => clearInterval(handle);
  }, [status.nextRetryAt]);

  let text: string;
  let kind: string;
  if (status.sleeping) {
    text = "Sleeping — push notifications on while this page is hidden";
    kind = "sleeping";
  } else if (!status.online) {
    text = "Offline — waiting for the network";
    kind = "offline";
  } else if (status.state === "open") {
    const rtt = status.quality.rttMs;
    text = `Connected${rtt === null ? "" : ` · RTT ${rtt} ms`} · ${status.quality.level}`;
    kind = `connected ${status.quality.level}`;
  } else if (status.state === "reconnecting") {
    const wait = status.nextRetryAt === null ? 0 : Math.max(0, Math.ceil((status.nextRetryAt - client.now()) / 1000));
    text = status.nextRetryAt === null ? "Reconnecting…" : `Reconnecting in ${wait} s`;
    kind = "reconnecting";
  } else if (status.state === "connecting") {
    text = "Connecting…";
    kind = "connecting";
  } else {
    text = "Disconnected";
    kind = "offline";
  }
  return (
    <div className={`conn ${kind}`} data-testid="connection-status" data-state={status.sleeping ? "sleeping" : status.state} role="status" aria-live="polite">
      <span className="dot" aria-hidden="true" />
      {text}
      {status.queued > 0 ? <span className="queued"> · {status.queued} queued</span> : null}
    </div>
  );
}
