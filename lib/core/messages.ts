/**
 * The typed values that flow through charla's core: what people ask for
 * ({@linkcode Command}) and what they are told ({@linkcode ChatEvent}). The core
 * never makes text for a wire: each transport encodes these events its own way
 * (a line for nc, an IRC message, a JSON frame), so nothing is parsed back out
 * of a string.
 *
 * These shapes are also the JSON protocol of the web page and of `client.ts`
 * (see the README's "JSON protocol"): keep them flat, plain data, and stable.
 *
 * @module
 */

/** A room name: `#` and 1 to 32 ASCII letters, digits, `_` or `-`. */
export type RoomName = string;

/** What is said of a person in an event: their current name and their id. */
export interface Who {
  /** Unique for the life of the server (of the cluster, when there is one). */
  readonly id: number;
  /** Unique ignoring case (and look-alikes) while connected. */
  readonly name: string;
}

/** What kind of room line: the history keeps these. */
export type LineKind = "message" | "action" | "notice";

/** One line of a room's history, as stored and replayed. */
export interface HistoryLine {
  /** The room it was said in. */
  readonly room: RoomName;
  /** Milliseconds since the epoch. */
  readonly time: number;
  /** Who said it, by name at the time (`server` for the operator). */
  readonly from: string;
  readonly kind: LineKind;
  /** The text, already made safe (see wire/text.ts). */
  readonly text: string;
}

/** A room as `/rooms` lists it. */
export interface RoomInfo {
  readonly room: RoomName;
  /** People in it. */
  readonly count: number;
  /** Empty when none is set. */
  readonly topic: string;
}

/** A person as `/who` lists them. */
export interface MemberInfo {
  readonly id: number;
  readonly name: string;
  /** The away message; absent while present. */
  readonly away?: string;
  /** How they are connected: `line`, `irc`, `web`, `json`. */
  readonly transport: string;
}

/**
 * Everything a person can be told. Events marked *room* are alike for every
 * recipient, so a transport may encode one once and share the bytes; the rest
 * are replies to one person.
 */
export type ChatEvent =
  /** *room*: a line said in a room. */
  | {
    readonly type: "message";
    readonly room: RoomName;
    readonly from: Who;
    readonly text: string;
    readonly time: number;
  }
  /** *room*: a `/me` action. */
  | {
    readonly type: "action";
    readonly room: RoomName;
    readonly from: Who;
    readonly text: string;
    readonly time: number;
  }
  /**
   * The operator's words: to one room, or (room null) to everyone. Shown as
   * coming from `server`, which nobody else may be called.
   */
  | { readonly type: "broadcast"; readonly room: RoomName | null; readonly text: string }
  /**
   * A private message. `echo` is the sender's own copy (`-> *bea* hola`);
   * `from` null is the operator. `notice`: sent as an IRC NOTICE, which
   * nothing answers automatically (no away reply; bots must not reply).
   */
  | {
    readonly type: "private";
    readonly from: Who | null;
    readonly to: Who | null;
    readonly text: string;
    readonly action: boolean;
    readonly echo: boolean;
    readonly time: number;
    readonly notice?: boolean;
  }
  /** *room*: someone came into the room (`from`: the room they left for it, if any). */
  | {
    readonly type: "join";
    readonly room: RoomName;
    readonly who: Who;
    readonly from?: RoomName;
    /** How the newcomer is connected, as in {@linkcode MemberInfo}: for member lists. */
    readonly transport?: string;
    /** The newcomer's away message, when they come in away. */
    readonly away?: string;
  }
  /**
   * *room*: someone left the room but not the server: `to` is where they went
   * (a line client is in one room at a time), `reason` a part message.
   */
  | {
    readonly type: "part";
    readonly room: RoomName;
    readonly who: Who;
    readonly to?: RoomName;
    readonly reason?: string;
  }
  /**
   * Someone left the server. Sent once to each person who shared a room with
   * them; `reason` as in {@linkcode describeLeave}: `eof`, `quit: bye`,
   * `kicked: …`, `timed out`, `too slow`, `connection lost`.
   */
  | {
    readonly type: "quit";
    readonly who: Who;
    readonly reason: string;
    /**
     * Every room they were in: alike for every recipient, so a client that
     * keeps member lists updates the ones it shares (the web page).
     */
    readonly rooms?: readonly RoomName[];
  }
  /** Someone took a new name; once to each person who shares a room with them. */
  | {
    readonly type: "nick";
    readonly who: Who;
    readonly from: string;
    /** Every room they are in, as for `quit`. */
    readonly rooms?: readonly RoomName[];
  }
  /** *room*: the topic changed (`by` null: the operator). */
  | {
    readonly type: "topic";
    readonly room: RoomName;
    readonly topic: string;
    readonly by: string | null;
  }
  /** Reply: you are connected, and who you are (`user<id>` until you choose a name). */
  | { readonly type: "welcome"; readonly you: Who; readonly server: string }
  /** Reply: the server's message of the day (`--motd`), once after the welcome. */
  | { readonly type: "motd"; readonly lines: readonly string[] }
  /** Reply: your name is now `name`. */
  | { readonly type: "renamed"; readonly you: Who; readonly from: string }
  /** Reply: you are now in `room`; the first `members` (at most 20) and the total. */
  | {
    readonly type: "joined";
    readonly room: RoomName;
    readonly topic: string;
    readonly count: number;
    readonly members: readonly MemberInfo[];
    /** The room you were in before (line clients: one room at a time). */
    readonly from?: RoomName;
  }
  /** Reply: you left `room` (with the part message you gave, if any). */
  | { readonly type: "parted"; readonly room: RoomName; readonly reason?: string }
  /** Reply to `/who`: the people in a room (up to a limit) and how many in all. */
  | {
    readonly type: "who";
    readonly room: RoomName;
    readonly count: number;
    readonly members: readonly MemberInfo[];
  }
  /** Reply to `/whois`. `address` only for the operator's eyes (and your own). */
  | {
    readonly type: "whois";
    readonly who: Who;
    readonly rooms: readonly RoomName[];
    readonly transport: string;
    readonly since: number;
    readonly idleSeconds: number;
    readonly away?: string;
    readonly address?: string;
    /** In a cluster, the node they are connected to when it is not this one. */
    readonly node?: string;
  }
  /** Reply to `/rooms`: the first rooms (at most 200), and how many there are. */
  | { readonly type: "rooms"; readonly rooms: readonly RoomInfo[]; readonly total: number }
  /** Reply to `/topic` without text. */
  | {
    readonly type: "topic_is";
    readonly room: RoomName;
    readonly topic: string;
  }
  /** The last lines of a room, before its live lines (on join, or `/history`). */
  | { readonly type: "history"; readonly room: RoomName; readonly lines: readonly HistoryLine[] }
  /** Reply: you tried to message someone who is away. */
  | { readonly type: "away_is"; readonly who: Who; readonly text: string }
  /** Reply: your away state changed (`text` absent: you are back). */
  | { readonly type: "away"; readonly text?: string }
  /** Reply: the list of people you ignore changed, or `/ignore` alone asked for it. */
  | { readonly type: "ignoring"; readonly names: readonly string[] }
  /**
   * The server is about to close your connection, and why: a client that was
   * kicked or banned does not come back by itself; one whose server shut down
   * may.
   */
  | { readonly type: "closing"; readonly reason: ClosingReason; readonly text: string }
  /** Reply: a note for you (the help lines, and the like). */
  | { readonly type: "info"; readonly text: string }
  /** Reply: what you asked for was refused; only you see it. */
  | { readonly type: "error"; readonly code: ErrorCode; readonly text: string };

/**
 * Why a command was refused, for programs (IRC numerics, the web page); the
 * event's `text` is the sentence for people.
 */
export type ErrorCode =
  | "usage"
  | "unknown_command"
  | "no_such_name"
  | "no_such_room"
  | "bad_name"
  | "name_taken"
  | "bad_room"
  | "not_in_room"
  /** Only the room's operators may do that (its topic is locked). */
  | "not_operator"
  | "not_relay"
  | "flood"
  | "too_long"
  | "too_many_rooms"
  | "password"
  | "denied"
  | "full"
  | "slow"
  | "line_timeout"
  | "telnet"
  /** In a cluster: the person is on a node this one cannot reach now. */
  | "unreachable";

/** Why the server closes a connection (see the `closing` event). */
export type ClosingReason = "quit" | "kicked" | "banned" | "shutdown" | "timeout";

/** The event types that are alike for every recipient in a room. */
export type RoomEvent = Extract<
  ChatEvent,
  { type: "message" | "action" | "join" | "part" | "topic" | "broadcast" | "quit" | "nick" }
>;

/**
 * Everything a person can ask for, typed. Line clients type them as `/commands`
 * (see commands.ts); IRC clients send IRC commands that map to these; JSON
 * clients send them as they are.
 */
export type Command =
  /** Say `text` in `room` (line clients: their one room). */
  | { readonly type: "say"; readonly room?: RoomName; readonly text: string }
  | { readonly type: "action"; readonly room?: RoomName; readonly text: string }
  /** `notice`: an IRC NOTICE, answered by nothing automatic (no away reply). */
  | {
    readonly type: "msg";
    readonly to: string;
    readonly text: string;
    readonly action?: boolean;
    readonly notice?: boolean;
  }
  | { readonly type: "join"; readonly room: RoomName }
  | { readonly type: "part"; readonly room?: RoomName; readonly reason?: string }
  | { readonly type: "nick"; readonly name: string }
  /** Without `text`, asks what the topic is. */
  | { readonly type: "topic"; readonly room?: RoomName; readonly text?: string }
  | { readonly type: "who"; readonly room?: RoomName }
  | { readonly type: "whois"; readonly name: string }
  | { readonly type: "rooms" }
  /** Without `text`: back. */
  | { readonly type: "away"; readonly text?: string }
  /** Without `name`: list who is ignored. */
  | { readonly type: "ignore"; readonly name?: string }
  | { readonly type: "unignore"; readonly name: string }
  | { readonly type: "history"; readonly room?: RoomName; readonly count?: number }
  | { readonly type: "quit"; readonly reason?: string }
  | { readonly type: "help" };

/**
 * The reason someone left, for people: empty when they simply closed their side.
 *
 * @example
 * ```ts
 * import { describeLeave } from "./messages.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describeLeave("ana", "eof"), "ana left");
 * assert.equal(describeLeave("ana", "too slow"), "ana left (too slow)");
 * ```
 */
export function describeLeave(name: string, reason: string): string {
  return reason === "eof" ? `${name} left` : `${name} left (${reason})`;
}
