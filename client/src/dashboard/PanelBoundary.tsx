/** An error boundary per dashboard panel: one panel's crash never unmounts the page. */

import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  /** The panel's name, shown in its fallback. */
  name: string;
  children: ReactNode;
}

interface State {
  error: Error | null;
}

/**
 * React unmounts the whole tree when a render throws and nothing catches it: one bad
 * payload in the market panel used to blank the prices, alerts and wallets too. Each
 * panel sits in its own boundary; "Retry" renders it again (the next payload may be fine).
 */
export class PanelBoundary extends Component<Props, State> {
  override state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error(`dashboard panel "${this.props.name}" failed`, error, info.componentStack);
  }

  override render(): ReactNode {
    if (this.state.error === null) return this.props.children;
    return (
      <section className="card failed" role="alert" data-testid={`panel-failed-${this.props.name}`}>
        <p className="warn">The {this.props.name} panel stopped working. The rest of the page is fine.</p>
        <button type="button" onClick={() => this.setState({ error: null })}>
          Retry
        </button>
      </section>
    );
  }
}
