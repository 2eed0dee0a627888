/**
 * The store of a cluster node: history in the rooms' Redis streams (which
 * the cluster writes as it relays), topics and bans in Redis hashes, so every
 * node sees the same.
 *
 * The rooms this node follows (those with someone here in them) keep their
 * recent lines in memory too, in the order people here saw them: a joiner's
 * history then comes at once, and nothing said while it is replayed can slip
 * between the history and the live lines. The first person here to enter a
 * room waits for the room's stream to be read; the cluster starts following
 * the room from the last entry read, so no line comes twice or goes missing.
 *
 * @module
 */

import type { HistoryLine, RoomName } from "../core/messages.ts";
import { roomKey } from "../core/names.ts";
import { HistoryRing } from "../store/memory.ts";
import {
  type Ban,
  MAX_TOPICS,
  type Store,
  type StoredTopic,
  type StoreEvent,
} from "../store/store.ts";
import { sanitizeText } from "../wire/text.ts";
import { ClusterKeys, isWord, parseLinesHeader, text } from "./entries.ts";
import { SET_TOPIC } from "./scripts.ts";
import type { RedisClient } from "./redis.ts";
import type { Reply } from "./resp.ts";

const decoder = new TextDecoder();

/** Options for {@linkcode RedisStore}. */
export interface RedisStoreOptions {
  /** The keys of the cluster. @default the `charla:` keys */
  keys?: ClusterKeys;
  /** Lines kept in memory per followed room, for joiners and `/history`. @default {1000} */
  cached?: number;
  /** Told when a write fails and when writing works again. */
  onEvent?: (event: StoreEvent) => void;
  /** What `description` says of where Redis is. @default {"redis"} */
  where?: string;
  /**
   * Topics kept in Redis: past this many (and a sixteenth), those set longest
   * ago are deleted. @default {MAX_TOPICS}
   */
  maxTopics?: number;
}

/** Where a followed room's stream was read up to when it was loaded. */
export interface Loaded {
  /**
   * The id of the newest entry read; `0-0` when the stream is empty; null when
   * it could not be read (Redis is down: follow it from its end once it is back).
   */
  readonly lastId: string | null;
}

/**
 * History, topics and bans of a cluster, in Redis.
 *
 * @example
 * ```ts ignore
 * const store = new RedisStore(redis, { cached: 1000 });
 * await store.load("#lobby");            // the cluster does this on the first join here
 * store.recent("#lobby", 50);            // at once, from memory
 * ```
 */
export class RedisStore implements Store {
  readonly description: string;
  readonly #redis: RedisClient;
  readonly #keys: ClusterKeys;
  readonly #cached: number;
  readonly #maxTopics: number;
  readonly #onEvent: (event: StoreEvent) => void;
  /** Recent lines of each followed room, by room key. */
  readonly #rings = new Map<string, HistoryRing>();
  /**
   * Rooms whose stream is being read, by room key: lines said here meanwhile
   * go after what the read returns (they were written to Redis after it).
   */
  readonly #loading = new Map<string, { done: Promise<Loaded>; queued: HistoryLine[] }>();
  /** Set after a failed write, until one succeeds. */
  #failing = false;

  /** A store over the cluster's command connection. */
  constructor(redis: RedisClient, options: RedisStoreOptions = {}) {
    this.#redis = redis;
    this.#keys = options.keys ?? new ClusterKeys();
    this.#cached = options.cached ?? 1000;
    this.#maxTopics = options.maxTopics ?? MAX_TOPICS;
    this.#onEvent = options.onEvent ?? (() => {});
    this.description = options.where ?? "redis";
  }

  /**
   * Reads the recent lines of a room's stream into memory: the cluster calls
   * this when someone here enters a room nobody here was in. Resolves with
   * where the read ended, for the cluster to follow the stream from there.
   */
  load(room: RoomName): Promise<Loaded> {
    const key = roomKey(room);
    const loading = this.#loading.get(key);
    if (loading !== undefined) return loading.done;
    const queued: HistoryLine[] = [];
    const done = this.#redis.command(
      "XREVRANGE",
      this.#keys.room(room),
      "+",
      "-",
      "COUNT",
      this.#cached,
    )
      .then((reply) => {
        const ring = new HistoryRing(this.#cached);
        for (const line of historyLines(room, reply).slice(-this.#cached)) ring.push(line);
        for (const line of queued) ring.push(line);
        return { ring, lastId: newestId(reply) ?? "0-0" };
      })
      .catch(() => {
        const ring = new HistoryRing(this.#cached);
        for (const line of queued) ring.push(line);
        return { ring, lastId: null };
      })
      .then(({ ring, lastId }) => {
        if (this.#loading.get(key)?.done === done) {
          this.#loading.delete(key);
          this.#rings.set(key, ring);
        }
        return { lastId };
      });
    this.#loading.set(key, { done, queued });
    return done;
  }

  /** Whether a room's lines are in memory. */
  loaded(room: RoomName): boolean {
    return this.#rings.has(roomKey(room));
  }

  /** Forgets a room's lines in memory: nobody here is in it any more. */
  unload(room: RoomName): void {
    const key = roomKey(room);
    this.#rings.delete(key);
    this.#loading.delete(key);
  }

  /** Keeps a line in memory, for a followed room; Redis has it from the cluster already. */
  append(line: HistoryLine): void {
    const key = roomKey(line.room);
    const ring = this.#rings.get(key);
    if (ring !== undefined) return ring.push(line);
    this.#loading.get(key)?.queued.push(line);
  }

  recent(room: RoomName, count: number): HistoryLine[] | Promise<HistoryLine[]> {
    const key = roomKey(room);
    const ring = this.#rings.get(key);
    if (ring !== undefined) return ring.last(count);
    const loading = this.#loading.get(key);
    if (loading !== undefined) {
      return loading.done.then(() => this.#rings.get(key)?.last(count) ?? []);
    }
    return this.#redis.command("XREVRANGE", this.#keys.room(room), "+", "-", "COUNT", count)
      .then((reply) => historyLines(room, reply).slice(-count), () => []);
  }

  async topics(): Promise<StoredTopic[]> {
    // Topics a flood left from before they were bounded go first (SET_TOPIC
    // with no topic to set only trims).
    await this.#setTopic("", "", 0).catch(() => {});
    const reply = await this.#redis.command("HGETALL", this.#keys.topics).catch(() => []);
    const topics: StoredTopic[] = [];
    for (const [, value] of pairs(reply)) {
      const topic = parseObject(value);
      if (
        topic !== null && typeof topic.room === "string" && typeof topic.topic === "string" &&
        typeof topic.by === "string" && typeof topic.time === "number"
      ) {
        topics.push({ room: topic.room, topic: topic.topic, by: topic.by, time: topic.time });
      }
    }
    return topics;
  }

  setTopic(topic: StoredTopic): void {
    this.#write(this.#setTopic(roomKey(topic.room), JSON.stringify(topic), topic.time));
  }

  /** Runs SET_TOPIC: sets a topic (`room` "": none) and trims the topics past the bound. */
  #setTopic(room: string, json: string, time: number): Promise<Reply> {
    const { topics, topicTimes } = this.#keys;
    return this.#redis.command(
      "EVAL",
      SET_TOPIC,
      2,
      topics,
      topicTimes,
      room,
      json,
      time,
      this.#maxTopics,
    );
  }

  async bans(): Promise<Ban[]> {
    const reply = await this.#redis.command("HGETALL", this.#keys.bans).catch(() => []);
    const now = Date.now();
    const bans: Ban[] = [];
    for (const [, value] of pairs(reply)) {
      const ban = parseObject(value);
      if (
        ban === null || typeof ban.mask !== "string" ||
        (ban.kind !== "name" && ban.kind !== "address") || typeof ban.reason !== "string" ||
        typeof ban.since !== "number" || (ban.until !== null && typeof ban.until !== "number")
      ) continue;
      if (ban.until !== null && (ban.until as number) <= now) continue;
      bans.push(ban as unknown as Ban);
    }
    return bans;
  }

  addBan(ban: Ban): void {
    this.#write(
      this.#redis.command("HSET", this.#keys.bans, ban.mask.toLowerCase(), JSON.stringify(ban)),
    );
  }

  async removeBan(mask: string): Promise<boolean> {
    return await this.#redis.integer("HDEL", this.#keys.bans, mask.toLowerCase()) === 1;
  }

  /** Settles once every write issued so far was answered: Redis answers in order. */
  async flush(): Promise<void> {
    await this.#redis.command("PING").catch(() => {});
  }

  /** The cluster owns the connection; nothing to close here. */
  close(): Promise<void> {
    return this.flush();
  }

  #write(reply: Promise<Reply>): void {
    reply.then(
      () => {
        if (!this.#failing) return;
        this.#failing = false;
        this.#onEvent({ type: "recovered" });
      },
      (error) => {
        if (this.#failing) return;
        this.#failing = true;
        this.#onEvent({ type: "failed", message: (error as Error).message });
      },
    );
  }
}

/**
 * The lines of a room's stream entries read newest first (XREVRANGE), as
 * history, oldest first. Notices are not history.
 */
export function historyLines(room: RoomName, reply: Reply): HistoryLine[] {
  const lines: HistoryLine[] = [];
  if (!Array.isArray(reply)) return lines;
  for (let e = reply.length - 1; e >= 0; e--) {
    const entry = reply[e];
    if (!Array.isArray(entry) || !Array.isArray(entry[1])) continue;
    const fields = entry[1];
    if (!isWord(fields[0], "h") || !(fields[1] instanceof Uint8Array)) continue;
    const header = parseLinesHeader(fields[1]);
    const body = fields[3];
    if (header === null || !(body instanceof Uint8Array)) continue;
    for (let start = 0; start <= body.length;) {
      const at = body.indexOf(0x0a, start);
      const end = at < 0 ? body.length : at;
      lines.push({
        room,
        time: header.time,
        from: header.name,
        kind: header.kind,
        text: sanitizeText(decoder.decode(body.subarray(start, end))),
      });
      start = end + 1;
    }
  }
  return lines;
}

/** The id of the first entry of a reply read newest first; null when there is none. */
function newestId(reply: Reply): string | null {
  if (!Array.isArray(reply) || reply.length === 0 || !Array.isArray(reply[0])) return null;
  return text(reply[0][0]);
}

/** The field/value pairs of an HGETALL reply. */
function pairs(reply: Reply): [Reply, Reply][] {
  const out: [Reply, Reply][] = [];
  if (!Array.isArray(reply)) return out;
  for (let i = 0; i + 1 < reply.length; i += 2) out.push([reply[i], reply[i + 1]]);
  return out;
}

function parseObject(value: Reply): Record<string, unknown> | null {
  try {
    const parsed = JSON.parse(text(value));
    return typeof parsed === "object" && parsed !== null ? parsed : null;
  } catch (error) {
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}
