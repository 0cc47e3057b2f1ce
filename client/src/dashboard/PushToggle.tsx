/** The Web Push opt-in of the notifications panel: a button, never a prompt on page load. */

import { useEffect, useSyncExternalStore } from "react";
import type { PushOptIn } from "../core/push";

const LABELS: Record<string, string> = {
  unsupported: "This browser cannot receive push notifications here.",
  unavailable: "Push notifications are not configured on this server.",
  denied: "Notifications are blocked for this site in the browser's settings.",
  on: "Push notifications are on for this browser: you are told even with the page closed.",
  off: "Get told even when this page is closed.",
  busy: "…",
};

export function PushToggle({ push }: { push: PushOptIn }) {
  const { status, error } = useSyncExternalStore(push.subscribe, push.getSnapshot, push.getSnapshot);
  useEffect(() => {
    void push.refresh();
  }, [push]);
  return (
    <div className="push-optin" data-testid="push-optin" data-status={status}>
      <span className="muted">{LABELS[status]}</span>
      {status === "off" ? (
        <button className="link" onClick={() => void push.enable()} data-testid="push-enable">
          Enable push notifications
        </button>
      ) : null}
      {status === "on" ? (
        <button className="link" onClick={() => void push.disable()} data-testid="push-disable">
          Turn off on this browser
        </button>
      ) : null}
      {error !== null ? (
        <span className="warn" data-testid="push-error">
          {" "}
          Could not enable push: {error}
        </span>
      ) : null}
    </div>
  );
}
