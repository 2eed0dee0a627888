/**
 * Bans: who may not come in (by address or network) and which names may not be
 * taken, each until a time or until lifted. The {@linkcode BanList} holds the
 * bans in force in memory, so that checking a connection or a `/nick` never
 * waits, and writes every change through the {@linkcode Store}, so that bans
 * outlive a restart when the store does (`--db`).
 *
 * A name ban covers the name's look-alikes too (see `nameKey`): banning
 * `alice` keeps out `AIice` and `a1ice`, as the directory would refuse them
 * beside `alice`. An address ban is an address or a CIDR network; an IPv4
 * client of a server listening on `::` (`::ffff:a.b.c.d`) matches IPv4 bans.
 *
 * @module
 */

import { type Cidr, cidrContains, parseAddress, parseCidr } from "../net/cidr.ts";
import type { Ban, Store } from "../store/store.ts";
import { nameKey } from "./names.ts";

const NAME = /^[A-Za-z0-9_-]{1,32}$/;
const MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/i;
const DURATION = /^(\d{1,6})([smhdw])$/;
const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** What a ban mask names, parsed: a name, or an address or network. */
export type BanTarget =
  | { readonly kind: "name"; readonly mask: string }
  | { readonly kind: "address"; readonly mask: string; readonly cidr: Cidr };

/**
 * Parses what the operator wrote after `/ban`: a name (`ana`), an address
 * (`192.0.2.7`, `::1`) or a network (`10.0.0.0/8`). An address is kept in its
 * canonical form without `/32` or `/128`, a network as its canonical CIDR; an
 * IPv4-mapped one (`::ffff:192.0.2.7`) as the IPv4 address or network it carries.
 * Returns the reason when it is none of these.
 *
 * @example
 * ```ts
 * import { parseBanMask } from "./bans.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseBanMask("ana"), { kind: "name", mask: "ana" });
 * assert.equal((parseBanMask("10.1.2.3/8") as { mask: string }).mask, "10.0.0.0/8");
 * assert.equal((parseBanMask("::FFFF:192.0.2.7") as { mask: string }).mask, "192.0.2.7");
 * assert.equal(typeof parseBanMask("a b"), "string");
 * ```
 */
export function parseBanMask(text: string): BanTarget | string {
  if (NAME.test(text) && !/^\d+$/.test(text)) return { kind: "name", mask: text };
  // An IPv4-mapped form bans the IPv4 address it carries: write it as that, so
  // that one ban has one mask whichever way it was typed.
  const mapped = MAPPED.exec(text);
  if (mapped !== null && (mapped[2] === undefined || Number(mapped[2]) >= 96)) {
    text = mapped[2] === undefined ? mapped[1] : `${mapped[1]}/${Number(mapped[2]) - 96}`;
  }
  if (parseAddress(text) !== null || text.includes("/")) {
    let cidr: Cidr;
    try {
      cidr = parseCidr(text);
    } catch (error) {
      return (error as Error).message.replace(/^Invalid CIDR/, "invalid network");
    }
    const single = cidr.prefix === (cidr.family === 4 ? 32 : 128) && !text.includes("/");
    return { kind: "address", mask: single ? cidr.text.replace(/\/\d+$/, "") : cidr.text, cidr };
  }
  return `"${text}" is neither a name, an address nor a network (such as 10.0.0.0/8)`;
}

/**
 * A ban's length as the operator writes it: a number and `s`, `m`, `h`, `d`
 * or `w`, in milliseconds; null when `text` is not one.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./bans.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDuration("10m"), 600_000);
 * assert.equal(parseDuration("7d"), 7 * 86_400_000);
 * assert.equal(parseDuration("spam"), null);
 * ```
 */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text);
  if (match === null || Number(match[1]) === 0) return null;
  return Number(match[1]) * UNIT_MS[match[2]];
}

/**
 * When a ban ends, for people: `18:00` today, `2026-12-01 18:00` another day,
 * in the server's local time.
 */
export function formatUntil(until: number, now: number = Date.now()): string {
  const d = new Date(until);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (new Date(now).toDateString() === d.toDateString()) return hm;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

/**
 * What a banned person reads: `you are banned: spam (until 18:00)`.
 *
 * @example
 * ```ts
 * import { bannedText } from "./bans.ts";
 * import assert from "node:assert/strict";
 *
 * const ban = { mask: "ana", kind: "name", reason: "", since: 0, until: null } as const;
 * assert.equal(bannedText(ban), "you are banned");
 * assert.equal(bannedText({ ...ban, reason: "spam" }), "you are banned: spam");
 * ```
 */
export function bannedText(ban: Ban, now: number = Date.now()): string {
  const why = ban.reason === "" ? "" : `: ${ban.reason}`;
  const until = ban.until === null ? "" : ` (until ${formatUntil(ban.until, now)})`;
  return `you are banned${why}${until}`;
}

/** One ban in force, with its network parsed once. */
interface Held {
  readonly ban: Ban;
  readonly cidr: Cidr | null;
}

/** Options for {@linkcode BanList}. */
export interface BanListOptions {
  /** The clock, in milliseconds since the epoch. @default {Date.now} */
  now?: () => number;
}

/**
 * The bans in force, in memory, written through to a store.
 *
 * @example
 * ```ts
 * import { BanList, type BanTarget, parseBanMask } from "./bans.ts";
 * import { MemoryStore } from "../store/memory.ts";
 * import assert from "node:assert/strict";
 *
 * const bans = new BanList(new MemoryStore());
 * bans.add(parseBanMask("10.0.0.0/8") as BanTarget, { reason: "spam" });
 * bans.add(parseBanMask("alice") as BanTarget, { durationMs: 60_000 });
 * assert.equal(bans.forAddress("::ffff:10.1.2.3")?.reason, "spam");
 * assert.equal(bans.forAddress("192.0.2.1"), null);
 * assert.equal(bans.forName("AIice")?.mask, "alice"); // a look-alike
 * ```
 */
export class BanList {
  readonly #store: Store;
  readonly #now: () => number;
  /** Name bans by name key. */
  readonly #names = new Map<string, Held>();
  /** Address and network bans by their canonical mask. */
  readonly #addresses = new Map<string, Held>();

  /** An empty list writing to `store`; {@linkcode load} fills it from the store. */
  constructor(store: Store, options: BanListOptions = {}) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
  }

  /** How many bans are in force. */
  get size(): number {
    this.#expire();
    return this.#names.size + this.#addresses.size;
  }

  /**
   * Takes the bans the store holds (at start). Synchronous when the store
   * answers at once, so that no connection is admitted before they are known.
   */
  load(): void | Promise<void> {
    const bans = this.#store.bans();
    if (!(bans instanceof Promise)) return this.#take(bans);
    return bans.then((list) => this.#take(list));
  }

  #take(bans: readonly Ban[]): void {
    for (const ban of bans) {
      const target = parseBanMask(ban.mask);
      if (typeof target === "string" || target.kind !== ban.kind) continue; // not ours
      this.#hold(ban, target);
    }
  }

  /**
   * Bans `target` for `durationMs` (none: until lifted), replacing a ban of
   * the same mask, and keeps it in the store. Returns the ban.
   */
  add(target: BanTarget, options: { durationMs?: number; reason?: string } = {}): Ban {
    const since = this.#now();
    const ban: Ban = {
      mask: target.mask,
      kind: target.kind,
      reason: options.reason ?? "",
      since,
      until: options.durationMs === undefined ? null : since + options.durationMs,
    };
    // A name ban replaces one of a look-alike: the store keeps one row per name key.
    const old = target.kind === "name" ? this.#names.get(nameKey(target.mask)) : undefined;
    if (old !== undefined && old.ban.mask !== ban.mask) this.#store.removeBan(old.ban.mask);
    this.#hold(ban, target);
    this.#store.addBan(ban);
    return ban;
  }

  /**
   * Lifts the ban on `mask` (a name's look-alike finds it too). Returns the
   * ban lifted, or null when there was none in force.
   */
  remove(mask: string): Ban | null {
    this.#expire();
    const target = parseBanMask(mask);
    if (typeof target === "string") return null;
    const map = target.kind === "name" ? this.#names : this.#addresses;
    const key = target.kind === "name" ? nameKey(target.mask) : target.mask;
    const held = map.get(key);
    if (held === undefined) return null;
    map.delete(key);
    void this.#store.removeBan(held.ban.mask);
    return held.ban;
  }

  /** The bans in force, oldest first. */
  list(): Ban[] {
    this.#expire();
    return [...this.#names.values(), ...this.#addresses.values()]
      .map((held) => held.ban)
      .sort((a, b) => a.since - b.since);
  }

  /**
   * The ban that keeps out `address` (a remote hostname as Deno reports it),
   * or null. Anything that is not an IP address (a Unix socket) is never banned.
   */
  forAddress(address: string): Ban | null {
    if (this.#addresses.size === 0 || parseAddress(address) === null) return null;
    const now = this.#now();
    for (const held of this.#addresses.values()) {
      if (!inForce(held.ban, now)) continue;
      if (cidrContains(held.cidr!, address)) return held.ban;
    }
    return null;
  }

  /** The ban on `name` or a look-alike of it, or null. */
  forName(name: string): Ban | null {
    if (this.#names.size === 0) return null;
    const held = this.#names.get(nameKey(name));
    return held !== undefined && inForce(held.ban, this.#now()) ? held.ban : null;
  }

  #hold(ban: Ban, target: BanTarget): void {
    if (target.kind === "name") {
      this.#names.set(nameKey(target.mask), { ban, cidr: null });
    } else this.#addresses.set(target.mask, { ban, cidr: target.cidr });
  }

  /** Forgets bans that ended (and has the store forget them). */
  #expire(): void {
    const now = this.#now();
    for (const map of [this.#names, this.#addresses]) {
      for (const [key, held] of map) {
        if (inForce(held.ban, now)) continue;
        map.delete(key);
        void this.#store.removeBan(held.ban.mask);
      }
    }
  }
}

function inForce(ban: Ban, now: number): boolean {
  return ban.until === null || ban.until > now;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * The host part of an address as people write it (`127.0.0.1:5000` →
 * `127.0.0.1`, `[::1]:5000` → `::1`); null for one without a host (a Unix
 * socket).
 *
 * @example
 * ```ts
 * import { hostOf } from "./bans.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(hostOf("127.0.0.1:5000"), "127.0.0.1");
 * assert.equal(hostOf("[::1]:5000"), "::1");
 * assert.equal(hostOf("unix:/tmp/chat.sock"), null);
 * ```
 */
export function hostOf(address: string): string | null {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(address);
  const host = bracketed !== null ? bracketed[1] : /^([^:]+):\d+$/.exec(address)?.[1];
  return host !== undefined && parseAddress(host) !== null ? host : null;
}
