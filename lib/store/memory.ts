/**
 * The default store: history in a ring per room, topics and bans in maps, all
 * lost at exit. Also the in-memory front of the durable stores, which keep the
 * recent lines here so that replaying history never waits for a disk.
 *
 * @module
 */

import type { HistoryLine, RoomName } from "../core/messages.ts";
import { type LineBatch, LineLog } from "./line_log.ts";
import {
  type Ban,
  MAX_TOPICS,
  setNewest,
  type Store,
  type StoredTopic,
  type StoreOptions,
} from "./store.ts";

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

/** Options for {@linkcode MemoryStore}. */
export interface MemoryStoreOptions extends StoreOptions {
  /**
   * Most bytes of text kept per room: long lines are kept, but fewer of them.
   * @default {4194304}
   */
  maxRoomBytes?: number;
  /**
   * Most bytes of memory the history takes in all, counting each room's
   * {@linkcode LineLog.footprint} (its text, and what a room costs however
   * little it keeps): past it, the rooms that have been quiet longest lose
   * their oldest lines first, and a room with none left is forgotten, so a
   * flood of new rooms cannot take the server's memory. Rooms someone is in
   * (see {@linkcode MemoryStore.occupied}) give way only once no other room
   * has lines left to give.
   * @default {67108864}
   */
  maxBytes?: number;
}

/**
 * History, topics and bans in memory. Each room's lines are kept as bytes (see
 * line_log.ts): appending the relay's batch makes no object per line.
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
  readonly #maxRoomBytes: number;
  readonly #maxBytes: number;
  /** Logs by lower-cased room name, the one appended to least recently first. */
  readonly #rooms = new Map<string, LineLog>();
  /** The footprints of all logs. */
  #bytes = 0;
  /** Rooms someone is in, by lower-cased name (see {@linkcode occupied}). */
  readonly #occupied = new Set<string>();
  readonly #topics = new Map<string, StoredTopic>();
  readonly #bans = new Map<string, Ban>();

  /** An empty store; see {@linkcode MemoryStoreOptions}. */
  constructor(options: MemoryStoreOptions = {}) {
    this.#keep = options.keep ?? 10_000;
    this.#maxRoomBytes = options.maxRoomBytes ?? 4 * 1024 * 1024;
    this.#maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  }

  append(line: HistoryLine): void {
    const log = this.#log(line.room);
    const before = log.footprint;
    log.appendText(line.from, line.kind, line.time, line.text);
    this.#grew(log.footprint - before);
  }

  appendBatch(room: RoomName, from: string, batch: LineBatch): void {
    const log = this.#log(room);
    const before = log.footprint;
    log.append(from, batch);
    this.#grew(log.footprint - before);
  }

  recent(room: RoomName, count: number): HistoryLine[] {
    return this.#rooms.get(room.toLowerCase())?.last(count) ?? [];
  }

  /**
   * Told when someone enters an empty room and when its last member leaves:
   * while people are in a room, its history gives way to the memory bound only
   * after every other room's (a quiet room's history is what someone joining
   * it reads, and a flood of lines elsewhere must not take it from them).
   */
  occupied(room: RoomName, occupied: boolean): void {
    const key = room.toLowerCase();
    if (occupied) this.#occupied.add(key);
    else this.#occupied.delete(key);
  }

  /** The room's log, made if new, and moved to the end of the least-recently-used order. */
  #log(room: RoomName): LineLog {
    const key = room.toLowerCase();
    let log = this.#rooms.get(key);
    if (log === undefined) {
      log = new LineLog(room, { keep: this.#keep, maxBytes: this.#maxRoomBytes });
      this.#bytes += log.footprint; // what an empty log costs
    } else {
      this.#rooms.delete(key);
    }
    this.#rooms.set(key, log);
    return log;
  }

  /**
   * Counts what a log grew by (it may have shrunk), then keeps the total within
   * bounds: past `maxBytes`, the logs appended to least recently give way down
   * to a sixteenth under it, in one pass (see {@linkcode setNewest} for why
   * not one room at a time); those of rooms someone is in only if the others
   * were not enough.
   */
  #grew(delta: number): void {
    this.#bytes += delta;
    if (this.#bytes <= this.#maxBytes) return;
    const target = this.#maxBytes - (this.#maxBytes >> 4);
    if (this.#occupied.size > 0) this.#shrinkTo(target, this.#occupied);
    this.#shrinkTo(target, null);
  }

  /** Shrinks the logs, least recently appended to first, but those in `spared`, to `target` bytes. */
  #shrinkTo(target: number, spared: ReadonlySet<string> | null): void {
    for (const [key, log] of this.#rooms) {
      const over = this.#bytes - target;
      if (over <= 0) break;
      if (spared?.has(key)) continue;
      const before = log.footprint;
      log.shrinkTo(Math.max(0, log.bytes - over));
      if (log.size === 0) {
        this.#rooms.delete(key);
        this.#bytes -= before;
      } else this.#bytes -= before - log.footprint;
    }
  }

  topics(): StoredTopic[] {
    return [...this.#topics.values()];
  }

  /** Keeps the topic; the {@linkcode MAX_TOPICS} set most recently are kept. */
  setTopic(topic: StoredTopic): void {
    setNewest(this.#topics, topic.room.toLowerCase(), topic, MAX_TOPICS);
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
