/**
 * The default store: history in a ring per room, topics and bans in maps, all
 * lost at exit. Also the in-memory front of the durable stores, which keep the
 * recent lines here so that replaying history never waits for a disk.
 *
 * @module
 */

import type { HistoryLine, RoomName } from "../core/messages.ts";
import type { Ban, Store, StoredTopic, StoreOptions } from "./store.ts";

/**
 * A fixed-size ring of the last lines of one room. `T` is what a line is kept
 * as: the durable stores keep each line with its row id.
 */
export class HistoryRing<T = HistoryLine> {
  readonly #lines: (T | undefined)[];
  /** Index the next line goes to. */
  #next = 0;
  /** How many slots hold a line. */
  #size = 0;

  /** A ring keeping the last `capacity` lines. */
  constructor(capacity: number) {
    this.#lines = new Array(capacity);
  }

  /** How many lines are kept. */
  get size(): number {
    return this.#size;
  }

  /** Adds a line, dropping the oldest when full. */
  push(line: T): void {
    const capacity = this.#lines.length;
    if (capacity === 0) return;
    this.#lines[this.#next] = line;
    this.#next = (this.#next + 1) % capacity;
    if (this.#size < capacity) this.#size++;
  }

  /** The last `count` lines, oldest first. */
  last(count: number): T[] {
    const n = Math.min(count, this.#size);
    const capacity = this.#lines.length;
    const out: T[] = new Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = this.#lines[(this.#next - n + i + capacity) % capacity]!;
    }
    return out;
  }
}

/**
 * History, topics and bans in memory.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "./memory.ts";
 * import assert from "node:assert/strict";
 *
 * const store = new MemoryStore({ keep: 2 });
 * for (const text of ["uno", "dos", "tres"]) {
 *   store.append({ room: "#lobby", time: 0, from: "ana", kind: "message", text });
 * }
 * const recent = store.recent("#Lobby", 5);
 * assert.deepEqual(recent.map((l) => l.text), ["dos", "tres"]);
 * ```
 */
export class MemoryStore implements Store {
  readonly description: string = "memory";
  readonly #keep: number;
  /** Rings by lower-cased room name. */
  readonly #rooms = new Map<string, HistoryRing>();
  readonly #topics = new Map<string, StoredTopic>();
  readonly #bans = new Map<string, Ban>();

  /** An empty store; see {@linkcode StoreOptions}. */
  constructor(options: StoreOptions = {}) {
    this.#keep = options.keep ?? 10_000;
  }

  append(line: HistoryLine): void {
    const key = line.room.toLowerCase();
    let ring = this.#rooms.get(key);
    if (ring === undefined) this.#rooms.set(key, ring = new HistoryRing(this.#keep));
    ring.push(line);
  }

  recent(room: RoomName, count: number): HistoryLine[] {
    return this.#rooms.get(room.toLowerCase())?.last(count) ?? [];
  }

  topics(): StoredTopic[] {
    return [...this.#topics.values()];
  }

  setTopic(topic: StoredTopic): void {
    this.#topics.set(topic.room.toLowerCase(), topic);
  }

  bans(): Ban[] {
    const now = Date.now();
    return [...this.#bans.values()].filter((ban) => ban.until === null || ban.until > now);
  }

  addBan(ban: Ban): void {
    this.#bans.set(ban.mask.toLowerCase(), ban);
  }

  removeBan(mask: string): boolean {
    return this.#bans.delete(mask.toLowerCase());
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
