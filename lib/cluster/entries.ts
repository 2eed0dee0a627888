/**
 * What charla's nodes write to Redis and read back: the keys, and the entries
 * of its streams, as bytes and values. Pure: no sockets, no timers.
 *
 * Three kinds of streams (see the README's "Cluster"):
 *
 * - one per room, `charla:room:<#room>`: the room's lines (its history, and
 *   how they reach the other nodes) and its join notices, in the order they
 *   were said. Entry ids are `<line>-<n>`: the room's line count after the
 *   entry, so a reader that skips from line 120 to line 241 knows exactly that
 *   120 lines were trimmed before it read them.
 * - `charla:events`: who connected, joined, left, renamed, went away; topics;
 *   nodes gone. Every node reads all of it.
 * - one inbox per node, `charla:inbox:<node>`: private messages and kicks for
 *   the people there.
 *
 * A line entry has two fields: `h`, a header (`m 1700000000000 7 node-a ana`:
 * kind, time, id, node, name; none of them holds a space), and `x`, the lines
 * joined by `\n` (sanitized text holds none), so a batch is encoded once and a
 * reader splits it without decoding. Every other entry has one field, `e`, a
 * JSON object with a `type`.
 *
 * @module
 */

import type { LineKind, RoomName } from "../core/messages.ts";
import { checkRoomName, roomKey } from "../core/names.ts";
import type { SaidBatch } from "../core/peer.ts";
import type { RemoteState } from "../core/remote.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LF = 0x0a;

/**
 * The Redis keys of one cluster, all under one prefix.
 *
 * @example
 * ```ts
 * import { ClusterKeys } from "./entries.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = new ClusterKeys();
 * assert.equal(keys.room("#Lobby"), "charla:room:#lobby");
 * assert.equal(keys.lineCount("#Lobby"), "charla:room:#lobby:n");
 * assert.equal(keys.inbox("node-a"), "charla:inbox:node-a");
 * ```
 */
export class ClusterKeys {
  /** `charla:` by default. */
  readonly prefix: string;
  /** Set when a Redis holds no data of ours (fresh, or restarted without persistence). */
  readonly epoch: string;
  /** The counter ids are taken from, in blocks. */
  readonly ids: string;
  /** The set of nodes that registered. */
  readonly nodes: string;
  /** Hash: person id -> {@linkcode PersonRecord} JSON, for everyone in the cluster. */
  readonly people: string;
  /** The stream every node reads: who is where, topics, nodes gone. */
  readonly events: string;
  /** Hash: room key -> topic JSON. */
  readonly topics: string;
  /** Sorted set: room key, scored by when its topic was set; how the topics are bounded. */
  readonly topicTimes: string;
  /** Hash: mask -> ban JSON. */
  readonly bans: string;

  /** Keys under `prefix`. */
  constructor(prefix = "charla:") {
    this.prefix = prefix;
    this.epoch = `${prefix}epoch`;
    this.ids = `${prefix}ids`;
    this.nodes = `${prefix}nodes`;
    this.people = `${prefix}people`;
    this.events = `${prefix}events`;
    this.topics = `${prefix}topics`;
    this.topicTimes = `${prefix}topic-times`;
    this.bans = `${prefix}bans`;
  }

  /** A node's liveness key: it exists while the node is alive (it expires otherwise). */
  alive(node: string): string {
    return `${this.prefix}alive:${node}`;
  }

  /** What comes before the node name in {@linkcode alive}: for scripts. */
  get alivePrefix(): string {
    return `${this.prefix}alive:`;
  }

  /** Hash: room key -> the line count a node has read its stream up to (flow control). */
  reading(node: string): string {
    return `${this.prefix}reading:${node}`;
  }

  /** A node's inbox stream. */
  inbox(node: string): string {
    return `${this.prefix}inbox:${node}`;
  }

  /** The key a name is claimed under (`key` is the name's look-alike key). */
  name(key: string): string {
    return `${this.prefix}name:${key}`;
  }

  /** A room's stream. */
  room(room: RoomName): string {
    return `${this.prefix}room:${roomKey(room)}`;
  }

  /** A room's line counter: the id of its stream's last entry. */
  lineCount(room: RoomName): string {
    return `${this.room(room)}:n`;
  }
}

/** How a node describes one of its people in `charla:people` and in events. */
export interface PersonRecord extends RemoteState {
  /** The look-alike key of a chosen name, which the node claimed; absent for `user<id>`. */
  readonly key?: string;
}

/** An entry of `charla:events` (JSON in field `e`). `node`: the node it is about or from. */
export type ClusterEvent =
  /** Someone connected to `node`, or `node` tells everything about them again. */
  | { readonly type: "person"; readonly node: string; readonly person: PersonRecord }
  | { readonly type: "join"; readonly node: string; readonly id: number; readonly room: RoomName }
  | {
    readonly type: "part";
    readonly node: string;
    readonly id: number;
    readonly room: RoomName;
    readonly to?: RoomName;
    readonly reason?: string;
  }
  | { readonly type: "quit"; readonly node: string; readonly id: number; readonly reason: string }
  | { readonly type: "nick"; readonly node: string; readonly id: number; readonly name: string }
  | {
    readonly type: "away";
    readonly node: string;
    readonly id: number;
    readonly text: string | null;
  }
  | {
    readonly type: "topic";
    readonly node: string;
    readonly room: RoomName;
    readonly topic: string;
    readonly by: string;
    readonly time: number;
  }
  /** `node`'s operator to everyone. */
  | { readonly type: "broadcast"; readonly node: string; readonly text: string }
  /** `count` lines said in `room` on `node` while it could not reach Redis. */
  | {
    readonly type: "unshared";
    readonly node: string;
    readonly room: RoomName;
    readonly count: number;
  }
  /** Every person of `node` there is: the rest are gone (after an outage). */
  | { readonly type: "roster"; readonly node: string; readonly ids: readonly number[] }
  /** `node` stopped refreshing its liveness key: its people are gone (written by a script). */
  | { readonly type: "gone"; readonly node: string };

/** An entry of a node's inbox (JSON in field `e`); `node` is the sender's. */
export type InboxMessage =
  | {
    readonly type: "private";
    readonly node: string;
    readonly from: { readonly id: number; readonly name: string } | null;
    readonly to: number;
    readonly text: string;
    readonly action: boolean;
    readonly time: number;
    readonly notice?: boolean;
  }
  | { readonly type: "kick"; readonly node: string; readonly id: number; readonly reason: string }
  /** Nothing: ends the node's blocking read, so it reads the rooms it follows now. */
  | { readonly type: "wake"; readonly node: string };

/** A notice in a room's stream (JSON in field `e`), in order with the room's lines. */
export type RoomNotice = {
  readonly type: "join";
  readonly node: string;
  readonly id: number;
  readonly name: string;
  readonly from?: RoomName;
};

/** The kinds of line, one letter each in a header. */
const KIND_LETTER: Record<LineKind, string> = { message: "m", action: "a", notice: "n" };
const LETTER_KIND: Record<string, LineKind> = { m: "message", a: "action", n: "notice" };

/** A line entry's header, read back. */
export interface LinesHeader {
  readonly kind: LineKind;
  readonly time: number;
  readonly id: number;
  readonly node: string;
  readonly name: string;
}

/**
 * The `h` field of a line entry.
 *
 * @example
 * ```ts
 * import { linesHeader, parseLinesHeader } from "./entries.ts";
 * import assert from "node:assert/strict";
 *
 * const header = linesHeader("action", 1700000000000, 7, "node-a", "ana");
 * assert.equal(header, "a 1700000000000 7 node-a ana");
 * assert.deepEqual(parseLinesHeader(new TextEncoder().encode(header)), {
 *   kind: "action", time: 1700000000000, id: 7, node: "node-a", name: "ana",
 * });
 * ```
 */
export function linesHeader(
  kind: LineKind,
  time: number,
  id: number,
  node: string,
  name: string,
): string {
  return `${KIND_LETTER[kind]} ${time} ${id} ${node} ${name}`;
}

/** Reads an `h` field; null when it is not one this version writes. */
export function parseLinesHeader(bytes: Uint8Array): LinesHeader | null {
  const parts = decoder.decode(bytes).split(" ");
  if (parts.length !== 5) return null;
  const [letter, time, id, node, name] = parts;
  const kind = LETTER_KIND[letter];
  if (kind === undefined || !/^\d{1,16}$/.test(time) || !/^\d{1,16}$/.test(id)) return null;
  if (node === "" || name === "") return null;
  return { kind, time: Number(time), id: Number(id), node, name };
}

/**
 * The `x` field of a line entry: the batch's lines joined by `\n`, in one
 * buffer (one allocation per batch).
 */
export function joinBatch(batch: SaidBatch): Uint8Array {
  // The batch holds them so already, with a newline after the last one too.
  return batch.text.bytes.slice(0, Math.max(0, batch.text.length - 1));
}

/** How many lines an `x` field holds. */
export function countLines(body: Uint8Array): number {
  let count = 1;
  for (let i = 0; i < body.length; i++) if (body[i] === LF) count++;
  return count;
}

/**
 * Fills `batch` (cleared first) with the lines of an `x` field, made safe
 * again: Redis is shared, and a line must reach nobody's terminal unsanitized
 * whoever wrote it.
 *
 * @example
 * ```ts
 * import { fillBatch, joinBatch } from "./entries.ts";
 * import { SaidBatch } from "../core/peer.ts";
 * import assert from "node:assert/strict";
 *
 * const batch = new SaidBatch();
 * fillBatch(batch, new TextEncoder().encode("hola\nqué\x1b[2J tal"));
 * assert.equal(batch.count, 2);
 * assert.equal(new TextDecoder().decode(joinBatch(batch)), "hola\nqué^[[2J tal");
 * ```
 */
export function fillBatch(batch: SaidBatch, body: Uint8Array): void {
  batch.text.clear();
  batch.ends.length = 0;
  let start = 0;
  for (let i = 0; i <= body.length; i++) {
    if (i < body.length && body[i] !== LF) continue;
    batch.text.appendSanitized(body, start, i);
    batch.endLine();
    start = i + 1;
  }
}

/**
 * The line count in a room stream's entry id `<line>-<n>`; NaN when the id
 * is not of that form.
 *
 * @example
 * ```ts
 * import { lineOf } from "./entries.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(lineOf("241-0"), 241);
 * assert.equal(lineOf("0-3"), 0);
 * assert.ok(Number.isNaN(lineOf("x")));
 * ```
 */
export function lineOf(id: string): number {
  const dash = id.indexOf("-");
  const text = dash < 0 ? id : id.slice(0, dash);
  return /^\d{1,16}$/.test(text) ? Number(text) : NaN;
}

/**
 * How many lines a reader missed between the last line it saw (`seen`) and an
 * entry that ends at line `last` holding `count` lines: the lines trimmed
 * from the stream before it read them.
 *
 * @example
 * ```ts
 * import { missedBefore } from "./entries.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(missedBefore(120, 121, 1), 0); // the next line
 * assert.equal(missedBefore(120, 125, 5), 0); // the next five, in one entry
 * assert.equal(missedBefore(120, 245, 5), 120); // lines 121 to 240 are gone
 * assert.equal(missedBefore(120, 120, 0), 0); // a notice between lines
 * ```
 */
export function missedBefore(seen: number, last: number, count: number): number {
  return Math.max(0, last - count - seen);
}

/** A value as the JSON of an `e` field. */
export function encodeJson(value: ClusterEvent | InboxMessage | RoomNotice): string {
  return JSON.stringify(value);
}

/** Reads an `e` field; null when it is not JSON with a string `type` and `node`. */
export function parseJson(bytes: Uint8Array): { type: string; node: string } | null {
  try {
    const value = JSON.parse(decoder.decode(bytes));
    if (typeof value !== "object" || value === null) return null;
    if (typeof value.type !== "string" || typeof value.node !== "string") return null;
    return value;
  } catch (error) {
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}

/**
 * A person as recorded by their node, checked: null when a field is missing or
 * of the wrong kind (a record from another version, or damaged). Lua's JSON
 * encoder writes an empty list as `{}`, so rooms may come as either.
 */
export function parsePerson(value: unknown): PersonRecord | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!isId(v.id) || typeof v.name !== "string" || typeof v.node !== "string") return null;
  if (typeof v.transport !== "string" || typeof v.since !== "number") return null;
  if (v.away !== null && v.away !== undefined && typeof v.away !== "string") return null;
  const rooms = Array.isArray(v.rooms) ? v.rooms : [];
  if (!rooms.every((room) => typeof room === "string" && checkRoomName(room) === null)) {
    return null;
  }
  return {
    id: v.id,
    name: v.name,
    node: v.node,
    transport: v.transport,
    since: v.since,
    away: typeof v.away === "string" ? v.away : null,
    rooms,
    ...(typeof v.key === "string" ? { key: v.key } : {}),
  };
}

/** A positive whole number that JSON carries exactly. */
export function isId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}

/** A bulk string of a reply as text. */
export function text(value: unknown): string {
  if (value instanceof Uint8Array) return decoder.decode(value);
  return typeof value === "string" ? value : String(value);
}

/** Text as bytes, for comparing with bulk strings without decoding them. */
export function bytes(value: string): Uint8Array {
  return encoder.encode(value);
}

/** Whether a bulk string is exactly the ASCII `word`. */
export function isWord(value: unknown, word: string): boolean {
  if (!(value instanceof Uint8Array) || value.length !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (value[i] !== word.charCodeAt(i)) return false;
  return true;
}
