/**
 * The server password (`--password-file`): the one check every transport
 * makes, through `ChatCore.verifyPassword()`, before it lets a connection in
 * (the line protocol's `/pass`, IRC's `PASS`, the web page's `pass`), so that
 * each says it in its own words but none can check it differently.
 *
 * - The comparison takes the same time whatever the attempt: both sides are
 *   hashed (SHA-256) and the digests compared with `timingSafeEqual`, so
 *   neither the password's length nor its first wrong byte shows in the timing.
 * - A wrong password is answered after a delay (1 s), which makes guessing
 *   through one connection slow.
 * - An address that fails too often (5 times within a minute) is refused for
 *   a while (a minute) whatever it sends, so that many connections in
 *   parallel do not make guessing fast again. The table of addresses is
 *   bounded: past its size, the entry least recently failed is forgotten.
 *
 * The password is only as secret as the connection it crosses: use it with TLS.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";

/** What {@linkcode ServerPassword.check} decided. */
export type PasswordVerdict =
  | { readonly ok: true }
  /**
   * Refused: `wrong` (after the delay), or `throttled` (too many failures
   * from this address; `retryAfter` is in seconds). `text` is the sentence
   * for the client.
   */
  | {
    readonly ok: false;
    readonly reason: "wrong" | "throttled";
    readonly text: string;
    readonly retryAfter?: number;
  };

/** Options for {@linkcode ServerPassword}. */
export interface ServerPasswordOptions {
  /** Milliseconds before a wrong password is answered. @default {1000} */
  delayMs?: number;
  /** Failures from one address within `windowMs` that make it wait. @default {5} */
  maxFailures?: number;
  /** The window failures are counted in, in milliseconds. @default {60000} */
  windowMs?: number;
  /** How long an address that failed too often is refused, in milliseconds. @default {60000} */
  blockMs?: number;
  /** Most addresses remembered. @default {10000} */
  maxAddresses?: number;
  /** The clock, in milliseconds. @default {Date.now} */
  now?: () => number;
}

/** What is remembered of an address that failed. */
interface Failures {
  /** When its recent failures happened, oldest first (at most `maxFailures`). */
  times: number[];
  /** Until when it is refused; 0 while it is not. */
  blockedUntil: number;
}

/** The line protocol's request, sent on connecting to a server with a password. */
export const PASSWORD_REQUEST = "this server needs a password: send /pass <password>";

/**
 * A server password and the record of who got it wrong.
 *
 * @example
 * ```ts
 * import { ServerPassword } from "./password.ts";
 * import assert from "node:assert/strict";
 *
 * const password = new ServerPassword("s3cret", { delayMs: 0, maxFailures: 2 });
 * assert.deepEqual(await password.check("192.0.2.7", "s3cret"), { ok: true });
 * assert.equal((await password.check("192.0.2.7", "guess")).ok, false);
 * assert.equal((await password.check("192.0.2.7", "guess2")).ok, false);
 * // Two failures: even the right password waits now.
 * const verdict = await password.check("192.0.2.7", "s3cret");
 * assert.equal(verdict.ok === false && verdict.reason, "throttled");
 * assert.deepEqual(await password.check("192.0.2.8", "s3cret"), { ok: true });
 * ```
 */
export class ServerPassword {
  /** SHA-256 of the password: all that is kept of it. */
  readonly #digest: Buffer;
  readonly #delayMs: number;
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #blockMs: number;
  readonly #maxAddresses: number;
  readonly #now: () => number;
  /** Addresses that failed recently, least recently failed first (Map order). */
  readonly #failures = new Map<string, Failures>();

  /** A check for `password`, which must not be empty. */
  constructor(password: string, options: ServerPasswordOptions = {}) {
    if (password === "") throw new RangeError("The server password must not be empty");
    this.#digest = digest(password);
    this.#delayMs = options.delayMs ?? 1000;
    this.#maxFailures = options.maxFailures ?? 5;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#blockMs = options.blockMs ?? 60_000;
    this.#maxAddresses = options.maxAddresses ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** How many addresses are remembered (for tests: the table is bounded). */
  get tracked(): number {
    return this.#failures.size;
  }

  /**
   * Checks `attempt` from `host` (an address without its port). Resolves at
   * once when it is right or the address is throttled, after the delay when
   * it is wrong.
   */
  check(host: string, attempt: string): Promise<PasswordVerdict> {
    const wait = this.retryAfter(host);
    if (wait > 0) {
      return Promise.resolve({
        ok: false,
        reason: "throttled",
        text: `too many wrong passwords; try again in ${wait} s`,
        retryAfter: wait,
      });
    }
    // Both digests are 32 bytes, so timingSafeEqual never throws, and the
    // time it takes says nothing of the attempt.
    if (this.matches(attempt)) return Promise.resolve({ ok: true });
    // Counted now, not after the delay: parallel guesses count at once.
    this.#fail(host);
    const verdict: PasswordVerdict = { ok: false, reason: "wrong", text: "wrong password" };
    if (this.#delayMs === 0) return Promise.resolve(verdict);
    return new Promise((resolve) => setTimeout(() => resolve(verdict), this.#delayMs));
  }

  /**
   * Whether `attempt` is the password, in constant time, without the delay
   * and the throttling of {@linkcode check}.
   */
  matches(attempt: string): boolean {
    return timingSafeEqual(digest(attempt), this.#digest);
  }

  /** Seconds `host` must wait before it may try again; 0 when it may now. */
  retryAfter(host: string): number {
    const entry = this.#failures.get(host);
    if (entry === undefined) return 0;
    const left = entry.blockedUntil - this.#now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  #fail(host: string): void {
    const now = this.#now();
    let entry = this.#failures.get(host);
    if (entry === undefined) {
      if (this.#failures.size >= this.#maxAddresses) this.#forgetOldest(now);
      entry = { times: [], blockedUntil: 0 };
    } else this.#failures.delete(host); // re-inserted last: the most recent
    this.#failures.set(host, entry);
    entry.times = entry.times.filter((t) => now - t < this.#windowMs);
    entry.times.push(now);
    if (entry.times.length >= this.#maxFailures) {
      entry.blockedUntil = now + this.#blockMs;
      entry.times = [];
    }
  }

  /**
   * Makes room in the table: the least recently failed address goes. One
   * that is still refused is kept if any other can go, so flooding the table
   * from many addresses does not lift a block early.
   */
  #forgetOldest(now: number): void {
    for (const [host, entry] of this.#failures) {
      if (entry.blockedUntil <= now) {
        this.#failures.delete(host);
        return;
      }
    }
    const first = this.#failures.keys().next();
    if (!first.done) this.#failures.delete(first.value);
  }
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
