/**
 * The operator's commands, typed on the server's stdin. Kept free of I/O: each
 * line goes in, reply lines come out, so tests can drive a server the way an
 * operator does without a terminal.
 *
 * @module
 */

import type { ChatServer } from "../chat_server.ts";
import { splitWord } from "../wire/text.ts";

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
  "  <text>                     send text to every client, as <server> text",
  "  /to <id|name> <text>       send text to one client only",
  "  /list                      who is connected: id, name, address, since when",
  "  /kick <id|name> [reason]   disconnect a client, telling it the reason",
  "  /quit                      shut the server down gracefully",
  "  /help                      this list",
  "  //text                     send a line that starts with /",
];

/**
 * Runs one line the operator typed.
 *
 * @example
 * ```ts
 * import { ChatServer } from "../chat_server.ts";
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
    case "to": {
      if (target === "" || rest === "") return done("error: usage: /to <id|name> <text>");
      return server.whisper(target, rest) === undefined ? done(noClient(target)) : done();
    }
    case "list":
      return done(...listClients(server));
    case "kick": {
      if (target === "") return done("error: usage: /kick <id|name> [reason]");
      const peer = server.kick(target, rest);
      return done(peer === undefined ? noClient(target) : `kicked #${peer.id} ${peer.name}`);
    }
    case "quit":
      return { replies: [], quit: true };
    case "help":
      return done(...OPERATOR_HELP);
    default:
      return done(`error: unknown command "/${command}"; /help lists the commands`);
  }
}

function noClient(target: string): string {
  return `error: no client "${target}"; /list shows who is connected`;
}

/** `/list`: one line per client, aligned. */
function listClients(server: ChatServer): string[] {
  const clients = server.clients();
  if (clients.length === 0) return ["no clients"];
  const now = Date.now();
  const rows = clients.map((c) => [
    `#${c.id}`,
    c.name,
    c.address,
    `since ${c.since.toTimeString().slice(0, 8)} (${ago(now - c.since.getTime())})`,
  ]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return [
    `${clients.length} connected:`,
    ...rows.map((r) => "  " + r.map((cell, i) => i < 3 ? cell.padEnd(widths[i]) : cell).join("  ")),
  ];
}

/** `42s`, `5m`, `3h`, `2d`. */
function ago(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
