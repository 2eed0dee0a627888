/**
 * The line protocol's wire format: what nc, telnet and client.ts users read.
 * Pure: typed events in, UTF-8 lines out.
 *
 * - `<ana> hola`: ana said it in your room; `** ana waves`: ana's `/me`.
 * - `*ana* hola`: ana, privately to you; `-> *ana* hola`: yours to her.
 * - `<server> …`, `*server* …`: the operator.
 * - `* …`: a notice from the server; `* error: …`: something you sent was refused.
 *
 * Names hold no spaces, `<`, `>` or `*`, so nobody can type a line that reads
 * as another person's, an action, or a notice.
 *
 * @module
 */

import type { ChatEvent, HistoryLine, MemberInfo, RoomEvent, Who } from "../core/messages.ts";
import { describeLeave } from "../core/messages.ts";
import type { SaidBatch, WireFormat } from "../core/peer.ts";
import { leaseBytes } from "../wire/shared_bytes.ts";
import { duration, prefixLines } from "../wire/text.ts";

const encoder = new TextEncoder();

/**
 * The text of an event, as lines without their line ending.
 *
 * @example
 * ```ts
 * import { renderEvent } from "./line_format.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(renderEvent({ type: "nick", who: { id: 1, name: "bea" }, from: "ana" }), [
 *   "* ana is now bea",
 * ]);
 * assert.deepEqual(renderEvent({ type: "error", code: "usage", text: "usage: /nick <name>" }), [
 *   "* error: usage: /nick <name>",
 * ]);
 * ```
 */
export function renderEvent(event: ChatEvent): string[] {
  switch (event.type) {
    case "message":
      return [`<${event.from.name}> ${event.text}`];
    case "action":
      return [`** ${event.from.name} ${event.text}`];
    case "broadcast":
      return [`<server> ${event.text}`];
    case "private": {
      const other = event.echo ? event.to : event.from;
      const name = other === null ? "server" : other.name;
      const text = event.action ? `** ${event.from?.name ?? "server"} ${event.text}` : event.text;
      return [event.echo ? `-> *${name}* ${text}` : `*${name}* ${text}`];
    }
    case "join":
      return [`* ${event.who.name} joined`];
    case "part":
      return [
        event.to !== undefined
          ? `* ${event.who.name} left for ${event.to}`
          : event.reason !== undefined
          ? `* ${event.who.name} left ${event.room} (${event.reason})`
          : `* ${event.who.name} left ${event.room}`,
      ];
    case "quit":
      return [`* ${describeLeave(event.who.name, event.reason)}`];
    case "nick":
      return [`* ${event.from} is now ${event.who.name}`];
    case "topic":
      return [
        event.topic === ""
          ? `* ${event.by ?? "the operator"} cleared the topic of ${event.room}`
          : `* ${event.by ?? "the operator"} set the topic of ${event.room}: ${event.topic}`,
      ];
    case "welcome":
      return [`* welcome, you are ${event.you.name}`];
    case "motd":
      return event.lines.map((line) => line === "" ? "*" : `* ${line}`);
    case "renamed":
      return [`* you are now ${event.you.name}`];
    case "joined": {
      const where = event.from === undefined ? "you are in" : "you are now in";
      const others = event.count - 1;
      const lines = [
        others === 0
          ? `* ${where} ${event.room}; nobody else is here`
          : `* ${where} ${event.room}, with ${listNames(event.members, others)}`,
      ];
      if (event.topic !== "") lines.push(`* topic: ${event.topic}`);
      return lines;
    }
    case "parted":
      return [`* you left ${event.room}`];
    case "who":
      return [`* in ${event.room} (${event.count}): ${listNames(event.members, event.count)}`];
    case "whois": {
      const parts = [
        event.rooms.length === 0 ? "in no room" : `in ${event.rooms.join(", ")}`,
        `via ${event.transport}`,
        `connected since ${clock(event.since, true)}`,
        `idle ${duration(event.idleSeconds)}`,
      ];
      if (event.away !== undefined) parts.push(`away: ${event.away}`);
      if (event.address !== undefined) parts.push(`from ${event.address}`);
      if (event.node !== undefined) parts.push(`on ${event.node}`);
      return [`* ${event.who.name} (#${event.who.id}): ${parts.join(", ")}`];
    }
    case "rooms":
      return [
        `* ${event.total} room${event.total === 1 ? "" : "s"}:`,
        ...event.rooms.map((r) =>
          `*   ${r.room} (${r.count})${r.topic === "" ? "" : `: ${r.topic}`}`
        ),
      ];
    case "topic_is":
      return [
        event.topic === ""
          ? `* ${event.room} has no topic`
          : `* topic of ${event.room}: ${event.topic}`,
      ];
    case "history":
      return [
        `* last ${event.lines.length} line${event.lines.length === 1 ? "" : "s"} of ${event.room}:`,
        ...event.lines.map(historyLine),
        "* end of history",
      ];
    case "away_is":
      return [`* ${event.who.name} is away: ${event.text}`];
    case "away":
      return [event.text === undefined ? "* you are back" : `* you are away: ${event.text}`];
    case "ignoring":
      return [
        event.names.length === 0 ? "* you ignore nobody" : `* you ignore ${event.names.join(", ")}`,
      ];
    case "info":
    case "closing":
      return [`* ${event.text}`];
    case "error":
      return [`* error: ${event.text}`];
  }
}

/** One history line: `[14:02] <ana> hola`, in the server's local time. */
function historyLine(line: HistoryLine): string {
  const time = `[${clock(line.time, false)}]`;
  switch (line.kind) {
    case "action":
      return `${time} ** ${line.from} ${line.text}`;
    case "notice":
      return `${time} <${line.from}> ${line.text}`;
    default:
      return `${time} <${line.from}> ${line.text}`;
  }
}

/** `ana, bea and 12 more`, with `(away)` after those who are away. */
function listNames(members: readonly MemberInfo[], total: number): string {
  const names = members.map((m) => m.away === undefined ? m.name : `${m.name} (away)`);
  return total > members.length
    ? `${names.join(", ")} and ${total - members.length} more`
    : names.join(", ");
}

/** `14:02` or `14:02:09`. */
function clock(ms: number, seconds: boolean): string {
  const d = new Date(ms);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${hm}:${pad(d.getSeconds())}` : hm;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** An event as the bytes a line client receives. */
export function encodeEvent(event: ChatEvent): Uint8Array {
  const lines = renderEvent(event);
  return encoder.encode(lines.length === 1 ? `${lines[0]}\n` : `${lines.join("\n")}\n`);
}

/**
 * `<name> ` (or `** name ` for actions) as bytes, per person: made when they
 * first say something (most idle people never do), remade after a rename.
 */
const prefixes = new WeakMap<Who, { name: string; message: Uint8Array; action: Uint8Array }>();

function prefixOf(from: Who, kind: SaidBatch["kind"]): Uint8Array {
  let cached = prefixes.get(from);
  if (cached === undefined || cached.name !== from.name) {
    cached = {
      name: from.name,
      message: encoder.encode(`<${from.name}> `),
      action: encoder.encode(`** ${from.name} `),
    };
    prefixes.set(from, cached);
  }
  return kind === "action" ? cached.action : cached.message;
}

/**
 * The line protocol as a {@linkcode WireFormat}: a batch becomes one buffer of
 * `<name> text\n` lines, shared by every line client in the room.
 */
export const LINE_FORMAT: WireFormat<Uint8Array> = {
  name: "line",
  encodeLines(_room, from, batch) {
    const prefix = prefixOf(from, batch.kind);
    const count = batch.count;
    // Leased: shared by every line client in the room, reused once all have written it.
    const out = leaseBytes(batch.text.length + count * prefix.length);
    prefixLines(out, 0, prefix, batch.text.bytes, batch.ends, 0, count);
    return out;
  },
  encodeEvent(event: RoomEvent): Uint8Array {
    return encodeEvent(event);
  },
};
