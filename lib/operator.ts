/**
 * The operator's commands, typed on the server's stdin. Kept free of I/O: each
 * line goes in, reply lines come out, so tests can drive a server the way an
 * operator does without a terminal.
 *
 * @module
 */

import type { ChatServer } from "./chat_server.ts";
import type { RemotePerson } from "./core/remote.ts";
import type { Room } from "./core/room.ts";
import { Session } from "./core/session.ts";
import { formatUntil, parseDuration } from "./core/bans.ts";
import { duration, splitWord } from "./wire/text.ts";

/** What the console should do after a line. */
export interface OperatorResult {
  /** Lines to show the operator (replies and errors). */
  readonly replies: string[];
  /** True after `/quit`: shut the server down. */
  readonly quit: boolean;
}

/** The operator's `/help`. */
export const OPERATOR_HELP: readonly string[] = [
  "commands:",
  "  <text>                     send text to everyone, as <server> text",
  "  /say <#room> <text>        send text to one room only",
  "  /to <id|name> <text>       send text to one client only",
  "  /list                      who is connected: id, name, room, address, since when",
  "  /rooms                     the rooms, with how many are in each and the topic",
  "  /whois <id|name>           one client: rooms, address, since when, idle, away",
  "  /topic <#room> <text>      set a room's topic",
  "  /kick <id|name> [reason]   disconnect a client, telling it the reason",
  "  /ban <name|address|cidr> [duration] [reason]",
  "                             keep out a name, an address or a network for a",
  "                             while (10m, 2h, 7d) or until lifted; a name's",
  "                             holder is removed and their address banned too",
  "  /unban <name|address|cidr> lift a ban",
  "  /bans                      the bans in force",
  "  /quit                      shut the server down gracefully",
  "  /help                      this list",
  "  //text                     send a line that starts with /",
];

/**
 * Runs one line the operator typed.
 *
 * @example
 * ```ts
 * import { ChatServer } from "./chat_server.ts";
 * import { runOperatorLine } from "./operator.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = new ChatServer(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
 * assert.deepEqual(runOperatorLine(server, "/list"), { replies: ["no clients"], quit: false });
 * assert.match(runOperatorLine(server, "/kick bob").replies[0], /no client "bob"/);
 * ```
 */
export function runOperatorLine(server: ChatServer, line: string): OperatorResult {
  const done = (...replies: string[]): OperatorResult => ({ replies, quit: false });
  if (!line.startsWith("/") || line.startsWith("//")) {
    const text = line.startsWith("//") ? line.slice(1) : line;
    if (text.trim() === "") return done();
    const count = server.say(text);
    return done(...(count === 0 ? ["(nobody is connected)"] : []));
  }
  const [word, args] = splitWord(line.slice(1));
  const command = word.toLowerCase();
  const [target, rest] = splitWord(args);
  switch (command) {
    case "say": {
      if (!target.startsWith("#") || rest === "") return done("error: usage: /say <#room> <text>");
      return server.say(rest, target) === undefined ? done(noRoom(target)) : done();
    }
    case "to": {
      if (target === "" || rest === "") return done("error: usage: /to <id|name> <text>");
      return server.whisper(target, rest) === undefined ? done(noClient(target)) : done();
    }
    case "list":
      return done(...listClients(server));
    case "rooms":
      return done(...listRooms(server));
    case "whois": {
      if (target === "") return done("error: usage: /whois <id|name>");
      const person = server.core.findPerson(target);
      if (person === undefined) return done(noClient(target));
      if (!(person instanceof Session)) {
        const idle = Math.floor((performance.now() - person.lastActive) / 1000);
        const rooms = person.rooms.length === 0
          ? "in no room"
          : `in ${person.rooms.map((r) => r.name).join(", ")}`;
        return done(
          `#${person.id} ${person.name}: on node ${person.node}, ${rooms} (${person.transport}), ` +
            `since ${clock(person.since)}, idle ${duration(idle)}` +
            (person.away === null ? "" : `, away: ${person.away}`),
        );
      }
      const session = person;
      const idle = Math.floor((performance.now() - session.lastActive) / 1000);
      return done(
        `#${session.id} ${session.name}: ${
          session.rooms.length === 0
            ? "in no room"
            : `in ${session.rooms.map((r) => r.name).join(", ")}`
        }, from ${session.address} (${session.transport}), since ${clock(session.since)}, idle ${
          duration(idle)
        }${session.away === null ? "" : `, away: ${session.away}`}`,
      );
    }
    case "topic": {
      if (!target.startsWith("#")) return done("error: usage: /topic <#room> <text>");
      const room = server.core.findRoom(target);
      if (room === undefined) return done(noRoom(target));
      server.core.setTopic(room, rest, null);
      return done();
    }
    case "kick": {
      if (target === "") return done("error: usage: /kick <id|name> [reason]");
      const peer = server.kick(target, rest);
      return done(peer === undefined ? noClient(target) : `kicked #${peer.id} ${peer.name}`);
    }
    case "ban":
      return done(...ban(server, target, rest));
    case "unban": {
      if (target === "") return done("error: usage: /unban <name|address|cidr>");
      const lifted = server.core.unban(target);
      return done(
        lifted === null
          ? `error: no ban on "${target}"; /bans lists them`
          : `unbanned ${lifted.mask}`,
      );
    }
    case "bans":
      return done(...listBans(server));
    case "quit":
      return { replies: [], quit: true };
    case "help":
      return done(...OPERATOR_HELP);
    default:
      return done(`error: unknown command "/${command}"; /help lists the commands`);
  }
}

/** `/ban <mask> [duration] [reason]`. */
function ban(server: ChatServer, target: string, rest: string): string[] {
  if (target === "") return ["error: usage: /ban <name|address|cidr> [duration] [reason]"];
  const [first, more] = splitWord(rest);
  const durationMs = parseDuration(first);
  if (durationMs === null && /^\d+[a-z]*$/i.test(first)) {
    return [`error: invalid duration "${first}": a number and s, m, h, d or w, as in 10m or 7d`];
  }
  const result = server.core.ban(
    target,
    durationMs === null ? { reason: rest } : { durationMs, reason: more },
  );
  if (typeof result === "string") return [`error: ${result}`];
  const until = result.bans[0].until;
  const who = result.removed.map((s) => `#${s.id} ${s.name}`).join(", ");
  return [
    `banned ${result.bans.map((b) => b.mask).join(" and ")}` +
    (until === null ? " until lifted" : ` until ${formatUntil(until)}`) +
    (result.removed.length === 0 ? "" : `; removed ${who}`),
  ];
}

/** `/bans`: one line per ban in force. */
function listBans(server: ChatServer): string[] {
  const bans = server.core.bans.list();
  if (bans.length === 0) return ["no bans"];
  const width = Math.max(...bans.map((b) => b.mask.length));
  return [
    `${bans.length} ban${bans.length === 1 ? "" : "s"}:`,
    ...bans.map((b) =>
      `  ${b.mask.padEnd(width)}  ${b.kind === "name" ? "name   " : "address"}  ` +
      (b.until === null ? "until lifted" : `until ${formatUntil(b.until)}`) +
      (b.reason === "" ? "" : `: ${b.reason}`)
    ),
  ];
}

function noClient(target: string): string {
  return `error: no client "${target}"; /list shows who is connected`;
}

function noRoom(target: string): string {
  return `error: nobody is in ${target}; /rooms lists the rooms`;
}

/**
 * `/list`: one line per client, aligned; in a cluster, the people on other
 * nodes after those here, with their node where the address would be.
 */
function listClients(server: ChatServer): string[] {
  const clients: (Session | RemotePerson)[] = server.clients();
  const here = clients.length;
  clients.push(...server.core.remote.people());
  if (clients.length === 0) return ["no clients"];
  const now = Date.now();
  const rows = clients.map((c) => [
    `#${c.id}`,
    c.name,
    c.rooms.map((r) => r.name).join(",") || "-",
    c instanceof Session ? c.address : `on ${c.node}`,
    `since ${clock(c.since)} (${duration(Math.floor((now - c.since.getTime()) / 1000))})`,
  ]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  const remote = clients.length - here;
  return [
    remote === 0
      ? `${clients.length} connected:`
      : `${clients.length} connected (${here} here, ${remote} on other nodes):`,
    ...rows.map((r) => "  " + r.map((cell, i) => i < 4 ? cell.padEnd(widths[i]) : cell).join("  ")),
  ];
}

/** `/rooms`: one line per room; in a cluster, every room, with where its people are. */
function listRooms(server: ChatServer): string[] {
  const rooms = server.rooms();
  if (rooms.length === 0) return ["no rooms"];
  return [
    `${rooms.length} room${rooms.length === 1 ? "" : "s"}:`,
    ...rooms.map((r) => `  ${r.name} (${count(r)})${r.topic === "" ? "" : `: ${r.topic}`}`),
  ];
}

/** `3`, or `3: 1 here, 2 on b` when some are on other nodes of a cluster. */
function count(room: Room): string {
  if (room.remote.size === 0) return `${room.size}`;
  const nodes = new Map<string, number>();
  for (const person of room.remote) nodes.set(person.node, (nodes.get(person.node) ?? 0) + 1);
  const where = [...nodes].map(([node, n]) => `${n} on ${node}`);
  if (room.members.size > 0) where.unshift(`${room.members.size} here`);
  return `${room.size}: ${where.join(", ")}`;
}

function clock(date: Date): string {
  return date.toTimeString().slice(0, 8);
}
