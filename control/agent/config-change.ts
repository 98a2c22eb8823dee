// flanneld reads the network config once, at start-up, and ignores later changes; so do we, but say so once
// per change instead of leaving an operator to wonder why an edited config did nothing.

export class ConfigChangeNotice {
  readonly #key: string;
  readonly #inUse: string;
  #seen: string | null;

  readonly #store: string;

  /** `inUse`: the config text the agent started with; `store` names where it lives, for the lines. */
  constructor(key: string, inUse: string, store = "etcd") {
    this.#key = key;
    this.#store = store;
    this.#inUse = inUse;
    this.#seen = inUse;
  }

  /** Takes the config as etcd has it now (null: deleted); returns the line to log when it differs from the last one seen. */
  observe(current: string | null): string | null {
    if (current === this.#seen) return null;
    this.#seen = current;
    const key = this.#key;
    if (current === this.#inUse) return `network config at ${key} is again the one in use`;
    if (current === null)
      return `network config at ${key} deleted in ${this.#store}; flannelette, like flanneld, reads it only at start-up: it goes on with the one it started with`;
    return `network config at ${key} changed in ${this.#store}; flannelette, like flanneld, applies it only at start-up: restart to apply`;
  }
}
