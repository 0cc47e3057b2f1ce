/** Public API of the React layer. */

export * from "./context";
export * from "./hooks";
