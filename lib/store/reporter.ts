/**
 * A store's events as the operator sees them: commits and prunes added up
 * into one `store` event a minute (a busy server commits a hundred times a
 * second, and a line for each would drown the console), failures and
 * recoveries at once.
 *
 * @module
 */

import type { ServerLog } from "../core/events.ts";
import type { StoreEvent } from "./store.ts";

/** Options for {@linkcode StoreReporter}. */
export interface StoreReporterOptions {
  /** Milliseconds between two `store` events, at most one per period. @default {60000} */
  every?: number;
}

/**
 * Adds up a store's events and reports them to a log. Events that come
 * before the log is known (while the store opens, before the server prints
 * its first line) wait for {@linkcode attach}.
 *
 * @example
 * ```ts
 * import { StoreReporter } from "./reporter.ts";
 * import type { ServerEvent } from "../core/events.ts";
 * import assert from "node:assert/strict";
 *
 * const events: ServerEvent[] = [];
 * const reporter = new StoreReporter();
 * reporter.record({ type: "stored", lines: 3, ms: 4 });
 * reporter.record({ type: "stored", lines: 2, ms: 6 });
 * reporter.attach({ event: (e) => events.push(e), message() {}, ready: () => undefined });
 * reporter.close(); // reports what was counted
 * assert.deepEqual(events, [{ event: "store", stored: 5, maxMs: 6, pruned: 0 }]);
 * ```
 */
export class StoreReporter {
  readonly #every: number;
  #log: ServerLog | null = null;
  /** Failures and recoveries that came before the log. */
  #early: StoreEvent[] = [];
  /** Counted since the last `store` event. */
  #stored = 0;
  #maxMs = 0;
  #pruned = 0;
  /** Due when something was counted; at most one at a time. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** A reporter; see {@linkcode StoreReporterOptions}. */
  constructor(options: StoreReporterOptions = {}) {
    this.#every = options.every ?? 60_000;
  }

  /** What the store calls: pass it as the store's `onEvent`. */
  readonly record = (event: StoreEvent): void => {
    switch (event.type) {
      case "stored":
        this.#stored += event.lines;
        this.#maxMs = Math.max(this.#maxMs, Math.round(event.ms));
        return this.#schedule();
      case "pruned":
        this.#pruned += event.lines;
        return this.#schedule();
      default:
        if (this.#log === null) this.#early.push(event);
        else this.#report(this.#log, event);
    }
  };

  /** Reports to `log` from now on, starting with what waited for it. */
  attach(log: ServerLog): void {
    this.#log = log;
    for (const event of this.#early.splice(0)) this.#report(log, event);
    this.#schedule();
  }

  /** Reports what is counted and stops; call it after the store closed. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#emit();
  }

  #report(log: ServerLog, event: StoreEvent): void {
    if (event.type === "failed") log.event({ event: "store_failed", message: event.message });
    else if (event.type === "recovered") {
      log.event({ event: "store_recovered", dropped: event.dropped ?? 0 });
    }
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#log === null || this.#closed) return;
    if (this.#stored === 0 && this.#pruned === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#emit();
    }, this.#every);
  }

  #emit(): void {
    if (this.#log === null || (this.#stored === 0 && this.#pruned === 0)) return;
    this.#log.event({
      event: "store",
      stored: this.#stored,
      maxMs: this.#maxMs,
      pruned: this.#pruned,
    });
    this.#stored = this.#maxMs = this.#pruned = 0;
  }
}
