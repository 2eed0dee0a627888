/**
 * What the core keeps beyond one connection: room history, topics and bans.
 * The core talks to a {@linkcode Store} only; the memory store (the default),
 * SQLite (`--db`) and Redis (`--cluster`) implement it.
 *
 * The hot path calls {@linkcode Store.append} once per relayed line, so it must
 * not wait or do I/O itself: stores buffer and write in group commits.
 *
 * @module
 */

import type { HistoryLine, RoomName } from "../core/messages.ts";
import type { LineBatch } from "./line_log.ts";

/** A ban: by name (kicks whoever holds it and bans their address) or by address/CIDR. */
export interface Ban {
  /** What is banned: a name (`ana`), an address (`192.0.2.7`, `::1`) or a CIDR (`10.0.0.0/8`). */
  readonly mask: string;
  readonly kind: "name" | "address";
  /** Why, as given by the operator; may be empty. */
  readonly reason: string;
  /** Milliseconds since the epoch when it was set. */
  readonly since: number;
  /** Milliseconds since the epoch when it ends; null: until lifted. */
  readonly until: number | null;
}

/** A room's topic as kept. */
export interface StoredTopic {
  readonly room: RoomName;
  readonly topic: string;
  /** Who set it (a name, or `server`). */
  readonly by: string;
  readonly time: number;
}

/**
 * Most topics kept, in memory and in a store, give or take a sixteenth (see
 * {@linkcode setNewest}): those of the rooms whose topic was set most
 * recently. A room keeps its topic when it empties (so that it is there when
 * people come back), and anyone may make a room and set one: a client sending
 * `/join #t1`, `/topic ...`, `/join #t2`, ... set 225 a second here; without
 * a bound, each took memory for good.
 */
export const MAX_TOPICS = 10_000;

/**
 * Most rooms whose history is kept in a file (`--db`) or in a cluster's
 * Redis (scripts.ts APPEND), give or take a sixteenth: those written to most
 * recently. Anyone may make a room (one a second each, see session.ts
 * NEW_ROOMS) and say one line in it; without a bound, a few clients doing so
 * all day would fill the disk or Redis, and history would stop being written
 * for everyone. Past the bound, the rooms written to longest ago lose their
 * history, a hundred rooms per pass; not a room someone is in (see
 * `Store.occupied`; in a cluster, a room some node reads).
 */
export const MAX_HISTORY_ROOMS = 10_000;

/**
 * Puts `value` in `map` under `key` as its newest entry (a Map keeps its
 * insertion order). Past `max` entries and a sixteenth, the oldest go, down to
 * `max`: at once, because finding a Map's first entry after deleting its first
 * entries skips every deleted one (V8 keeps them until the table is rebuilt):
 * a `MemoryStore` that dropped one room at a time took 32 µs per new room at
 * 40,000 one-line rooms, against 5 µs with no room to drop.
 */
export function setNewest<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size <= max + (max >> 4)) return;
  for (const old of map.keys()) {
    map.delete(old);
    if (map.size <= max) return;
  }
}

/** Something a store reports: counts for `--json`, and failures for the console. */
export type StoreEvent =
  | { readonly type: "stored"; readonly lines: number; readonly ms: number }
  | { readonly type: "pruned"; readonly lines: number }
  /** The store could not write (disk full, permission lost): the chat goes on. */
  | { readonly type: "failed"; readonly message: string }
  /**
   * Writing works again after a failure. `dropped`: lines that were never
   * written because the store's buffer filled while it failed (oldest first).
   */
  | { readonly type: "recovered"; readonly dropped?: number };

/** Where history, topics and bans live. */
export interface Store {
  /** What kind, for the console: `memory`, `sqlite <file>`, `redis <url>`. */
  readonly description: string;
  /**
   * Keeps one line. Never waits and never throws: a store that cannot write
   * reports it through `onEvent` and the chat goes on.
   */
  append(line: HistoryLine): void;
  /**
   * Keeps the lines of one relayed batch (see `SaidBatch`), said in `room` by
   * `from`: for stores that can keep bytes without a string per line. The
   * core uses it when present, `append()` otherwise. Same rules: never waits,
   * never throws.
   */
  appendBatch?(room: RoomName, from: string, batch: LineBatch): void;
  /**
   * The last `count` lines of `room`, oldest first, including lines appended
   * but not yet committed. Synchronous where the store can answer at once
   * (memory, SQLite), so that nothing said meanwhile can slip between the
   * replay and the live lines; a promise otherwise (Redis).
   */
  recent(room: RoomName, count: number): HistoryLine[] | Promise<HistoryLine[]>;
  /**
   * Told when a room gets its first member (`occupied` true) and loses its
   * last: a store that bounds the rooms it keeps history for keeps that of
   * rooms people are in (see {@linkcode MAX_HISTORY_ROOMS}).
   */
  occupied?(room: RoomName, occupied: boolean): void;
  /** Every kept topic, at start. */
  topics(): StoredTopic[] | Promise<StoredTopic[]>;
  setTopic(topic: StoredTopic): void;
  /** Bans in force (expired ones are left out). */
  bans(): Ban[] | Promise<Ban[]>;
  addBan(ban: Ban): void;
  /** Returns whether there was such a ban. */
  removeBan(mask: string): boolean | Promise<boolean>;
  /** Writes what is buffered; settles when it is durable (or failed and reported). */
  flush(): Promise<void>;
  /** Flushes and closes. */
  close(): Promise<void>;
}

/**
 * A store that cannot start (a corrupt or foreign file, a newer schema, a file in
 * use, no permission). The message is a sentence saying what to do, for the
 * entry point to print before it exits 1.
 *
 * @example
 * ```ts
 * import { StoreError } from "./store.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new StoreError(`Cannot open the database "x.db": file is not a database`);
 * assert.equal(error.name, "StoreError");
 * ```
 */
export class StoreError extends Error {
  /** An error with `message` for people and the underlying error as `cause`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
  }
}

/** Options every store takes. */
export interface StoreOptions {
  /**
   * Lines kept per room; older ones are pruned in the background.
   * @default {10000}
   */
  keep?: number;
  /** Told of commits, prunes and failures. */
  onEvent?: (event: StoreEvent) => void;
}
