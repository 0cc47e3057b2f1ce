// @vitest-environment happy-dom
import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { useLinkedWallets } from "../src/dashboard/WalletPanel";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function Linked({ initial, signedIn }: { initial: string[]; signedIn: boolean }) {
  const wallets = useLinkedWallets(initial, signedIn);
  return <div data-testid="linked">{wallets.map((w) => `${w.address}=${w.label}`).join(",")}</div>;
}

describe("useLinkedWallets", () => {
  it("reads the signed-in user's wallets and their labels from the wallets API", async () => {
    const body = { wallets: [{ address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", label: "Demo wallet · local dev chain (anvil)" }, { address: "0xAb" }] };
    const fetch = vi.fn(async () => new Response(JSON.stringify(body), { status: 200 }));
    vi.stubGlobal("fetch", fetch);
    await act(async () => {
      render(<Linked initial={[]} signedIn={true} />);
    });
    expect(fetch).toHaveBeenCalledWith("/api/wallets/", expect.anything());
    expect(screen.getByTestId("linked").textContent).toBe("0x70997970C51812dc3A010C7d01b50e0d17dc79C8=Demo wallet · local dev chain (anvil),0xAb=");
  });

  it("uses the page's wallets (no label) and asks nothing when signed out", async () => {
    const fetch = vi.fn();
    vi.stubGlobal("fetch", fetch);
    await act(async () => {
      render(<Linked initial={["0x01"]} signedIn={false} />);
    });
    expect(fetch).not.toHaveBeenCalled();
    expect(screen.getByTestId("linked").textContent).toBe("0x01=");
  });
});
