/**
 * charla's events as IRC lines: the translation rules between the core's typed
 * values and what an IRC client reads, pure (no sockets, no core state; times
 * and names are passed in), so each rule has a unit test.
 *
 * - What a room shares is encoded once per batch by {@linkcode IrcFormat}: the
 *   `:nick!user@host` prefix is the sender's, the same for every IRC member.
 *   Two formats serve a core: one plain, one with IRCv3 `server-time` tags.
 * - A line longer than IRC's 512 bytes is split into several messages, never
 *   cut; `/me` is CTCP ACTION both ways; IRC colour and bold codes are removed
 *   from what IRC clients say (charla's text is plain).
 * - Numerics carry the recipient's nick, so they are made per recipient (by the
 *   IRC transport, with the helpers here).
 *
 * @module
 */

import type {
  ErrorCode,
  HistoryLine,
  LineKind,
  RoomEvent,
  RoomName,
  Who,
} from "../core/messages.ts";
import type { SaidBatch, WireFormat } from "../core/peer.ts";
import { ByteBuilder } from "../wire/text.ts";
import {
  encodeAction,
  formatMessage,
  type IrcMessageInit,
  MAX_LINE_BYTES,
  type NumericName,
  numericReply,
  type ReplyTarget,
  serverTime,
  splitText,
  textBudget,
  utf8Length,
} from "./irc_message.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF = "\r\n";

/** The nick the operator's words come from on IRC, as `<server>` on a line client. */
export const OPERATOR_NICK = "server";

/**
 * Formats a message as {@linkcode formatMessage} does, but always writes the
 * last parameter as a trailing one (`:text`), as most servers do: old clients
 * (sic, ii) read a message's text only from there.
 *
 * @example
 * ```ts
 * import { formatLine } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatLine({ source: "ana!~a@irc", command: "JOIN", params: ["#lobby"] }), ":ana!~a@irc JOIN :#lobby");
 * ```
 */
export function formatLine(message: IrcMessageInit): string {
  const line = formatMessage(message);
  const params = message.params ?? [];
  const last = params.at(-1);
  if (last === undefined || line.endsWith(` :${last}`)) return line;
  return `${line.slice(0, line.length - last.length - 1)} :${last}`;
}

/**
 * Removes IRC formatting from text an IRC client sent: bold (`^B`), colours
 * (`^C` with up to two numbers, `^D` with hex), italics, underline,
 * strike-through, monospace, reverse and reset. Other clients would see them as
 * `^C04` and the like; charla's text is plain.
 *
 * @example
 * ```ts
 * import { stripFormatting } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(stripFormatting("\x02hola\x02 \x0304,12rojo\x03 fin"), "hola rojo fin");
 * ```
 */
export function stripFormatting(text: string): string {
  // deno-lint-ignore no-control-regex
  if (!/[\x02-\x04\x0f\x11\x16\x1d-\x1f]/.test(text)) return text;
  return text.replace(
    // deno-lint-ignore no-control-regex
    /\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g,
    "",
  );
}

/**
 * The text of an IRC QUIT for why someone left charla (see
 * `describeLeave` in core/messages.ts for the reasons).
 *
 * @example
 * ```ts
 * import { quitText } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(quitText("quit: adiós"), "Quit: adiós");
 * assert.equal(quitText("eof"), "Connection closed");
 * ```
 */
export function quitText(reason: string): string {
  if (reason === "quit") return "Quit";
  if (reason.startsWith("quit: ")) return `Quit: ${reason.slice(6)}`;
  if (reason === "eof") return "Connection closed";
  if (reason === "kicked") return "Kicked by the operator";
  if (reason.startsWith("kicked: ")) return `Kicked by the operator: ${reason.slice(8)}`;
  if (reason === "too slow") return "Too slow (send queue exceeded)";
  if (reason === "timed out") return "Idle timeout";
  if (reason === "connection lost") return "Connection lost";
  return reason.charAt(0).toUpperCase() + reason.slice(1);
}

/**
 * Cuts `text` to what fits as the trailing parameter of a line that has
 * `overhead` bytes besides it (CR LF included): for the few texts IRC cannot
 * split into several messages (a topic in a numeric, an away message). Never
 * inside a character or grapheme.
 *
 * @example
 * ```ts
 * import { fitText } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(fitText("hola", 100), "hola");
 * assert.equal(fitText("añañañ", 508), "aña");
 * ```
 */
export function fitText(text: string, overhead: number): string {
  const budget = MAX_LINE_BYTES - overhead;
  if (utf8Length(text) <= budget) return text;
  return budget < 4 ? "" : splitText(text, budget)[0];
}

/** What a line of text is sent as: who it is from, how, to whom, when. */
export interface TextLines {
  /** `nick!user@host`, or the server's name. */
  source: string;
  /** `PRIVMSG` or `NOTICE`. */
  command: "PRIVMSG" | "NOTICE";
  /** A channel or nick. */
  target: string;
  /** Whether it is a `/me` (CTCP ACTION). */
  action?: boolean;
  /** The `server-time` tag's moment, in milliseconds since the epoch; absent: no tags. */
  time?: number;
}

/**
 * One charla line as IRC messages (each without CR LF): one PRIVMSG or NOTICE,
 * or several when the text is longer than a 512-byte line can carry. Joined,
 * the pieces are the text, whole.
 *
 * @example
 * ```ts
 * import { textMessages } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   textMessages({ source: "ana!~ana@irc", command: "PRIVMSG", target: "#lobby", action: true }, "waves"),
 *   [":ana!~ana@irc PRIVMSG #lobby :\x01ACTION waves\x01"],
 * );
 * assert.equal(
 *   textMessages({ source: "ana!~ana@irc", command: "PRIVMSG", target: "#lobby" }, "x".repeat(1000)).length,
 *   3,
 * );
 * ```
 */
export function textMessages(line: TextLines, text: string): string[] {
  const tags = line.time === undefined ? undefined : { time: serverTime(line.time) };
  const budget = textBudget(line);
  return splitText(text, budget).map((piece) =>
    formatLine({
      tags,
      source: line.source,
      command: line.command,
      params: [line.target, line.action ? encodeAction(piece) : piece],
    })
  );
}

/** Looks up the `nick!user@host` of a person, for prefixes. */
export type SourceOf = (who: Who) => string;

/** Options of {@linkcode IrcFormat}. */
export interface IrcFormatOptions {
  /** The server's name: the source of what the operator says to everyone. */
  server: string;
  /** The `nick!user@host` of a person (by id, with the name given). */
  sourceOf: SourceOf;
  /** The `nick!user@host` of a person known by name only (a topic's setter). */
  sourceOfName: (name: string) => string;
  /** Whether lines carry IRCv3 `server-time` tags. @default {false} */
  tagged?: boolean;
  /** The clock, for events that carry no time. @default {Date.now} */
  now?: () => number;
}

/**
 * IRC as a {@linkcode WireFormat}: what a room shares, encoded once for every
 * IRC member that reads this variant (plain, or with `server-time` tags).
 *
 * @example A line said in a room
 * ```ts
 * import { IrcFormat } from "./irc_format.ts";
 * import { SaidBatch } from "../core/peer.ts";
 * import assert from "node:assert/strict";
 *
 * const format = new IrcFormat({
 *   server: "charla",
 *   sourceOf: (who) => `${who.name}!~${who.name}@irc`,
 *   sourceOfName: (name) => `${name}!${name}@line`,
 * });
 * const batch = new SaidBatch();
 * batch.text.appendText("hola");
 * batch.endLine();
 * const bytes = format.encodeLines("#lobby", { id: 1, name: "ana" }, batch);
 * assert.equal(new TextDecoder().decode(bytes), ":ana!~ana@irc PRIVMSG #lobby :hola\r\n");
 * ```
 */
export class IrcFormat implements WireFormat<Uint8Array> {
  readonly name = "irc";
  /** Whether lines carry `server-time` tags. */
  readonly tagged: boolean;
  readonly #server: string;
  readonly #sourceOf: SourceOf;
  readonly #sourceOfName: (name: string) => string;
  readonly #now: () => number;

  /** A format; see {@linkcode IrcFormatOptions}. */
  constructor(options: IrcFormatOptions) {
    this.#server = options.server;
    this.#sourceOf = options.sourceOf;
    this.#sourceOfName = options.sourceOfName;
    this.tagged = options.tagged ?? false;
    this.#now = options.now ?? Date.now;
  }

  /** The source of what the operator says: `server!operator@<server name>`. */
  get operatorSource(): string {
    return `${OPERATOR_NICK}!operator@${this.#server}`;
  }

  /**
   * The lines of a batch as PRIVMSGs (NOTICEs for IRC notices, CTCP ACTIONs
   * for `/me`), one buffer for every IRC member. A line that fits is copied as
   * bytes; a longer one is decoded and split.
   */
  encodeLines(room: RoomName, from: Who, batch: SaidBatch): Uint8Array {
    const source = this.#sourceOf(from);
    const kind: LineKind = batch.kind;
    const command = kind === "notice" ? "NOTICE" : "PRIVMSG";
    const action = kind === "action";
    const tags = this.tagged ? `@time=${serverTime(batch.time)} ` : "";
    const head = encoder.encode(
      `${tags}:${source} ${command} ${room} :${action ? "\x01ACTION " : ""}`,
    );
    const tail = encoder.encode(action ? "\x01\r\n" : CRLF);
    const budget = textBudget({ source, command, target: room, action });
    const text = batch.text.bytes;
    const out = new ByteBuilder(batch.text.length + batch.count * (head.length + tail.length));
    for (let i = 0; i < batch.count; i++) {
      const start = batch.start(i);
      const end = batch.ends[i];
      if (end - start <= budget) {
        out.append(head);
        out.append(text, start, end);
        out.append(tail);
        continue;
      }
      for (const piece of splitText(decoder.decode(text.subarray(start, end)), budget)) {
        out.append(head);
        out.appendText(piece);
        out.append(tail);
      }
    }
    return out.take();
  }

  /** An event every IRC member of a room sees alike, as IRC lines. */
  encodeEvent(event: RoomEvent): Uint8Array | null {
    const lines = this.eventLines(event);
    return lines.length === 0 ? null : encoder.encode(lines.join(CRLF) + CRLF);
  }

  /** The lines of {@linkcode encodeEvent}, without CR LF: for tests and replays. */
  eventLines(event: RoomEvent): string[] {
    const tags = this.tagged
      ? {
        time: serverTime(
          event.type === "message" || event.type === "action" ? event.time : this.#now(),
        ),
      }
      : undefined;
    const line = (init: IrcMessageInit) => formatLine({ tags, ...init });
    const time = tags === undefined ? undefined : Date.parse(tags.time);
    switch (event.type) {
      case "message":
      case "action":
        return textMessages({
          source: this.#sourceOf(event.from),
          command: "PRIVMSG",
          target: event.room,
          action: event.type === "action",
          time,
        }, event.text);
      case "broadcast":
        return textMessages({
          source: this.operatorSource,
          command: "NOTICE",
          target: event.room ?? "*",
          time,
        }, event.text);
      case "join":
        return [line({ source: this.#sourceOf(event.who), command: "JOIN", params: [event.room] })];
      case "part": {
        const reason = event.to !== undefined ? `left for ${event.to}` : event.reason;
        const source = this.#sourceOf(event.who);
        const head = `:${source} PART ${event.room} :`.length + 2;
        return [line({
          source,
          command: "PART",
          params: reason === undefined ? [event.room] : [event.room, fitText(reason, head)],
        })];
      }
      case "quit": {
        const source = this.#sourceOf(event.who);
        const text = quitText(event.reason);
        return [line({
          source,
          command: "QUIT",
          params: [fitText(text, utf8Length(`:${source} QUIT :`) + 2)],
        })];
      }
      case "nick":
        return [line({
          source: this.#sourceOf({ id: event.who.id, name: event.from }),
          command: "NICK",
          params: [event.who.name],
        })];
      case "topic": {
        const source = event.by === null ? this.operatorSource : this.#sourceOfName(event.by);
        const overhead = utf8Length(`:${source} TOPIC ${event.room} :`) + 2;
        return [line({
          source,
          command: "TOPIC",
          params: [event.room, fitText(event.topic, overhead)],
        })];
      }
    }
  }
}

/** Who a numeric is for, and from which server (see irc_message.ts). */
export type NumericTarget = ReplyTarget;

/**
 * A numeric reply as a line, with the recipient's nick first; the last
 * parameter is cut to fit 512 bytes when it must (use it for texts only).
 *
 * @example
 * ```ts
 * import { numeric } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   numeric({ server: "charla", nick: "ana" }, "ERR_NOSUCHNICK", ["bea", "No such nick"]),
 *   ":charla 401 ana bea :No such nick",
 * );
 * ```
 */
export function numeric(to: NumericTarget, name: NumericName, params: readonly string[]): string {
  const message = numericReply(to, name, params);
  const line = formatLine(message);
  if (utf8Length(line) + 2 <= MAX_LINE_BYTES) return line;
  const last = message.params.length - 1;
  const head = formatLine({ ...message, params: [...message.params.slice(0, last), "x"] });
  const overhead = utf8Length(head) - 1 + 2; // without "x", with CR LF
  message.params[last] = fitText(message.params[last], overhead);
  return formatLine(message);
}

/**
 * Lines of names (`353 RPL_NAMREPLY`), as many as 512 bytes need, then one
 * `366 RPL_ENDOFNAMES`. `symbol` is `=` for a public room, `@` for a secret one.
 *
 * @example
 * ```ts
 * import { namesLines } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(namesLines({ server: "charla", nick: "ana" }, "#lobby", "=", ["@bea", "ana"]), [
 *   ":charla 353 ana = #lobby :@bea ana",
 *   ":charla 366 ana #lobby :End of /NAMES list",
 * ]);
 * ```
 */
export function namesLines(
  to: NumericTarget,
  channel: string,
  symbol: "=" | "@",
  names: readonly string[],
  end: string | null = channel,
): string[] {
  const lines: string[] = [];
  const head = `:${to.server} 353 ${to.nick || "*"} ${symbol} ${channel} :`;
  const budget = MAX_LINE_BYTES - 2 - utf8Length(head);
  let current = "";
  for (const name of names) {
    const next = current === "" ? name : `${current} ${name}`;
    if (utf8Length(next) > budget && current !== "") {
      lines.push(head + current);
      current = name;
    } else current = next;
  }
  if (current !== "") lines.push(head + current);
  if (end !== null) lines.push(numeric(to, "RPL_ENDOFNAMES", [end, "End of /NAMES list"]));
  return lines;
}

/**
 * Words (channel names in a WHOIS) in as few lines of one numeric as 512 bytes
 * allow: `:server <code> <nick> <params…> :<words>`.
 */
export function wordLines(
  to: NumericTarget,
  name: NumericName,
  params: readonly string[],
  words: readonly string[],
): string[] {
  const head = formatLine(numericReply(to, name, [...params, "x"])).slice(0, -1);
  const budget = MAX_LINE_BYTES - 2 - utf8Length(head);
  const lines: string[] = [];
  let current = "";
  for (const word of words) {
    const next = current === "" ? word : `${current} ${word}`;
    if (utf8Length(next) > budget && current !== "") {
      lines.push(head + current);
      current = word;
    } else current = next;
  }
  if (current !== "") lines.push(head + current);
  return lines;
}

/**
 * The prefix of a member's nick in a room: `@` for an operator, `+` for voice;
 * with `multi-prefix`, every one that applies, highest first.
 *
 * @example
 * ```ts
 * import { memberPrefix } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(memberPrefix(true, true, false), "@");
 * assert.equal(memberPrefix(true, true, true), "@+");
 * assert.equal(memberPrefix(false, false, true), "");
 * ```
 */
export function memberPrefix(op: boolean, voice: boolean, multiPrefix: boolean): string {
  if (multiPrefix) return (op ? "@" : "") + (voice ? "+" : "");
  return op ? "@" : voice ? "+" : "";
}

/** Why a numeric is sent: the command, and the target it was about. */
export interface ErrorContext {
  /** The IRC command being handled (`PRIVMSG`, `JOIN`…). */
  command: string;
  /** Its target: a nick or channel, when there is one. */
  target?: string;
}

/**
 * The numeric for one of the core's errors, with the parameters IRC clients
 * expect, or null when there is none (the transport then sends the text as a
 * NOTICE).
 *
 * @example
 * ```ts
 * import { errorNumeric } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * const to = { server: "charla", nick: "ana" };
 * assert.equal(
 *   errorNumeric(to, "name_taken", "the name is taken", { command: "NICK", target: "bea" }),
 *   ":charla 433 ana bea :the name is taken",
 * );
 * ```
 */
export function errorNumeric(
  to: NumericTarget,
  code: ErrorCode,
  text: string,
  context: ErrorContext,
): string | null {
  const target = context.target ?? "*";
  switch (code) {
    case "usage":
      return numeric(to, "ERR_NEEDMOREPARAMS", [context.command, text]);
    case "unknown_command":
      return numeric(to, "ERR_UNKNOWNCOMMAND", [context.command, text]);
    case "no_such_name":
      return numeric(to, "ERR_NOSUCHNICK", [target, text]);
    case "no_such_room":
      return numeric(to, "ERR_NOSUCHCHANNEL", [target, text]);
    case "bad_name":
      return numeric(to, "ERR_ERRONEUSNICKNAME", [target, text]);
    case "name_taken":
      return numeric(to, "ERR_NICKNAMEINUSE", [target, text]);
    case "bad_room":
      return numeric(to, "ERR_BADCHANNAME", [target, text]);
    case "not_in_room":
      return context.command === "PRIVMSG" || context.command === "NOTICE"
        ? numeric(to, "ERR_CANNOTSENDTOCHAN", [target, text])
        : numeric(to, "ERR_NOTONCHANNEL", [target, text]);
    case "not_operator":
      return numeric(to, "ERR_CHANOPRIVSNEEDED", [target, text]);
    case "too_long":
      return numeric(to, "ERR_INPUTTOOLONG", [text]);
    case "too_many_rooms":
      return numeric(to, "ERR_TOOMANYCHANNELS", [target, text]);
    case "password":
      return numeric(to, "ERR_PASSWDMISMATCH", [text]);
    default:
      return null;
  }
}

/** How history is shown to an IRC client. */
export interface HistoryOptions extends NumericTarget {
  /** The room. */
  channel: RoomName;
  /**
   * Whether the client takes `server-time`: then each line is the message it
   * was, tagged with its time; otherwise a NOTICE that reads as history.
   */
  serverTime: boolean;
  /** A line's time as people read it (`14:02`). */
  clock: (ms: number) => string;
}

/**
 * A room's last lines for an IRC client, between two NOTICEs from the server
 * that say they are history: with `server-time`, as the PRIVMSGs (and
 * actions, and notices) they were, each with its original time; otherwise as
 * NOTICEs that read `[14:02] <ana> hola`.
 *
 * @example
 * ```ts
 * import { historyLines } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * const line = { room: "#lobby", time: Date.UTC(2026, 0, 1), from: "bea", kind: "message" as const, text: "hola" };
 * const options = { server: "charla", nick: "ana", channel: "#lobby", clock: () => "14:02" };
 * assert.deepEqual(historyLines([line], { ...options, serverTime: false }), [
 *   ":charla NOTICE #lobby :last 1 line of #lobby:",
 *   ":charla NOTICE #lobby :[14:02] <bea> hola",
 *   ":charla NOTICE #lobby :end of history",
 * ]);
 * assert.equal(
 *   historyLines([line], { ...options, serverTime: true })[1],
 *   "@time=2026-01-01T00:00:00.000Z :bea!bea@history PRIVMSG #lobby :hola",
 * );
 * ```
 */
export function historyLines(lines: readonly HistoryLine[], options: HistoryOptions): string[] {
  const { server, channel } = options;
  const notice = (text: string) =>
    textMessages({ source: server, command: "NOTICE", target: channel }, text);
  const count = lines.length;
  const out = notice(`last ${count} line${count === 1 ? "" : "s"} of ${channel}:`);
  for (const line of lines) {
    if (options.serverTime) {
      const source = line.from === OPERATOR_NICK
        ? `${OPERATOR_NICK}!operator@${server}`
        : `${line.from}!${line.from}@history`;
      out.push(...textMessages({
        source,
        command: line.kind === "notice" ? "NOTICE" : "PRIVMSG",
        target: channel,
        action: line.kind === "action",
        time: line.time,
      }, line.text));
    } else {
      const at = `[${options.clock(line.time)}]`;
      const text = line.kind === "action"
        ? `${at} * ${line.from} ${line.text}`
        : `${at} <${line.from}> ${line.text}`;
      out.push(...notice(text));
    }
  }
  out.push(...notice("end of history"));
  return out;
}

/**
 * Whether `name` matches an IRC mask (`*` any run, `?` one character),
 * ignoring ASCII case as `CASEMAPPING=ascii` says.
 *
 * @example
 * ```ts
 * import { matchMask } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(matchMask("coolni*", "coolNick"), true);
 * assert.equal(matchMask("#c?an", "#chan"), true);
 * assert.equal(matchMask("*an3", "#chan1"), false);
 * ```
 */
export function matchMask(mask: string, name: string): boolean {
  const fold = (s: string) => s.replace(/[A-Z]+/g, (c) => c.toLowerCase());
  const pattern = fold(mask).replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${pattern}$`, "s").test(fold(name));
}

/** One change in a channel MODE command. */
export interface ModeChange {
  /** `+` or `-`. */
  sign: "+" | "-";
  /** The mode letter. */
  mode: string;
  /** Its argument (a nick for `o` and `v`), when the mode takes one. */
  arg?: string;
}

/** Channel modes that take an argument both ways (operators, voice, bans). */
const MODES_WITH_ARG = new Set(["o", "v", "b"]);

/**
 * Reads the changes of a channel MODE command (`+tv-o qux ana`): letters
 * after `+` or `-`, each of `o`, `v` and `b` taking the next argument. A
 * letter whose argument is missing comes without `arg`.
 *
 * @example
 * ```ts
 * import { parseModeChanges } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseModeChanges(["+tv-o", "qux", "ana"]), [
 *   { sign: "+", mode: "t" },
 *   { sign: "+", mode: "v", arg: "qux" },
 *   { sign: "-", mode: "o", arg: "ana" },
 * ]);
 * ```
 */
export function parseModeChanges(params: readonly string[]): ModeChange[] {
  const changes: ModeChange[] = [];
  let next = 1;
  let sign: "+" | "-" = "+";
  for (const c of params[0] ?? "") {
    if (c === "+" || c === "-") {
      sign = c;
      continue;
    }
    if (MODES_WITH_ARG.has(c) && next < params.length) {
      changes.push({ sign, mode: c, arg: params[next++] });
    } else changes.push({ sign, mode: c });
  }
  return changes;
}

/**
 * The mode string of applied changes, for the MODE line everyone sees:
 * `+tv-o` and its arguments.
 *
 * @example
 * ```ts
 * import { formatModeChanges } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   formatModeChanges([{ sign: "+", mode: "t" }, { sign: "+", mode: "v", arg: "qux" }, { sign: "-", mode: "s" }]),
 *   ["+tv-s", "qux"],
 * );
 * ```
 */
export function formatModeChanges(changes: readonly ModeChange[]): string[] {
  let modes = "";
  let sign = "";
  const args: string[] = [];
  for (const change of changes) {
    if (change.sign !== sign) modes += sign = change.sign;
    modes += change.mode;
    if (change.arg !== undefined) args.push(change.arg);
  }
  return [modes, ...args];
}

/** A LIST filter (ISUPPORT `ELIST=MNU`). */
export type ListFilter =
  | { kind: "mask"; mask: string; negate: boolean }
  | { kind: "users"; more: boolean; count: number };

/**
 * Reads LIST's first parameter: channel masks (`#ch*`), negated masks
 * (`!*an1`) and user counts (`>1`, `<100`), comma-separated. Filters it does
 * not know (creation and topic times, `C<`/`T>`) are left out: charla does not
 * declare them.
 *
 * @example
 * ```ts
 * import { parseListFilters } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseListFilters("#ch*,>1"), [
 *   { kind: "mask", mask: "#ch*", negate: false },
 *   { kind: "users", more: true, count: 1 },
 * ]);
 * ```
 */
export function parseListFilters(param: string): ListFilter[] {
  const filters: ListFilter[] = [];
  for (const part of param.split(",")) {
    if (part === "") continue;
    const users = /^([<>])(\d{1,9})$/.exec(part);
    if (users !== null) {
      filters.push({ kind: "users", more: users[1] === ">", count: Number(users[2]) });
    } else if (/^[CT][<>]/.test(part)) {
      continue;
    } else if (part.startsWith("!")) {
      filters.push({ kind: "mask", mask: part.slice(1), negate: true });
    } else filters.push({ kind: "mask", mask: part, negate: false });
  }
  return filters;
}

/**
 * Whether a room passes LIST filters: every count filter, and (when there are
 * masks) at least one mask; a negated mask excludes what it matches.
 *
 * @example
 * ```ts
 * import { listMatches, parseListFilters } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(listMatches(parseListFilters("!#c*n2"), "#chan1", 1), true);
 * assert.equal(listMatches(parseListFilters("<2"), "#chan2", 2), false);
 * ```
 */
export function listMatches(filters: readonly ListFilter[], name: string, count: number): boolean {
  let masks = 0;
  let matched = false;
  for (const filter of filters) {
    if (filter.kind === "users") {
      if (filter.more ? count <= filter.count : count >= filter.count) return false;
    } else if (filter.negate) {
      if (matchMask(filter.mask, name)) return false;
    } else {
      masks++;
      if (matchMask(filter.mask, name)) matched = true;
    }
  }
  return masks === 0 || matched;
}

/** What WHOX can say of a person (`WHO <mask> %<fields>[,<token>]`). */
export interface WhoxPerson {
  channel: string;
  user: string;
  host: string;
  server: string;
  nick: string;
  flags: string;
  idleSeconds: number;
  realname: string;
}

/**
 * The parameters of a `354 RPL_WHOSPCRPL` (after the recipient's nick): the
 * fields asked for, always in WHOX's order `t c u i h s n f d l a o r`,
 * whatever order they were asked in. No IP address or account is disclosed:
 * `i` is `255.255.255.255`, `a` is `0` (no account).
 *
 * @example
 * ```ts
 * import { whoxFields } from "./irc_format.ts";
 * import assert from "node:assert/strict";
 *
 * const person = { channel: "#c", user: "~a", host: "irc", server: "charla", nick: "ana",
 *   flags: "H@", idleSeconds: 3, realname: "Ana" };
 * assert.deepEqual(whoxFields("tn", "321", person), ["321", "ana"]);
 * ```
 */
export function whoxFields(fields: string, token: string, person: WhoxPerson): string[] {
  const out: string[] = [];
  for (const field of "tcuihsnfdlaor") {
    if (!fields.includes(field)) continue;
    switch (field) {
      case "t":
        out.push(token === "" ? "0" : token);
        break;
      case "c":
        out.push(person.channel);
        break;
      case "u":
        out.push(person.user);
        break;
      case "i":
        out.push("255.255.255.255");
        break;
      case "h":
        out.push(person.host);
        break;
      case "s":
        out.push(person.server);
        break;
      case "n":
        out.push(person.nick);
        break;
      case "f":
        out.push(person.flags);
        break;
      case "d":
        out.push("0");
        break;
      case "l":
        out.push(String(person.idleSeconds));
        break;
      case "a":
        out.push("0");
        break;
      case "o":
        out.push("n/a");
        break;
      case "r":
        out.push(person.realname === "" ? "*" : person.realname);
        break;
    }
  }
  // Only the last parameter may hold spaces or be empty (the real name is last when asked).
  return out.map((p, i) => i < out.length - 1 && (p === "" || p.includes(" ")) ? "*" : p);
}
