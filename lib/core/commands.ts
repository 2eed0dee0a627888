/**
 * `/commands` as people type them (in nc, telnet, client.ts or the web page's
 * box) turned into typed {@linkcode Command} values, and the help that lists them.
 *
 * @module
 */

import type { Command } from "./messages.ts";
import { ByteBudget } from "./token_bucket.ts";
import { splitWord } from "../wire/text.ts";

/** A share of server time: milliseconds per second, and at once. */
export interface CommandShare {
  readonly msPerSecond: number;
  readonly burstMs: number;
  /**
   * The least a command is charged, in milliseconds: what it costs besides
   * the time it is measured for (reading and parsing it, writing its reply,
   * the garbage it leaves). @default {0}
   */
  readonly minMs?: number;
}

/**
 * Server time a person's commands may take: 20 ms a second, 5 ms at once. A
 * command can cost far more than its bytes (`/who` in a room of 200 is a 7 KB
 * reply to a 5-byte line: 13,107 of them in one 64 KiB write once took the
 * server most of a second), so what waits when this runs out is the rest of
 * that person's input, never anyone else's. A person typing commands uses
 * microseconds of it. Each command is charged at least 50 µs (`minMs`): a
 * command that takes one does not cost the server one, once read, parsed and
 * answered, and 14 clients sending `/away x` as fast as they were answered,
 * each charged only its run, held everyone else's lines up to half a second
 * (p99 497 ms; a person may still run 100 commands at once and 400 a second).
 * The line, IRC and web transports all apply it (IRC to
 * every command of a registered client but PRIVMSG and NOTICE, web to every
 * command frame but `say`, `action` and `msg`: what people say costs
 * microseconds, and its relay is bounded by the flood limit and flow control).
 */
export const COMMAND_SHARE: CommandShare = { msPerSecond: 20, burstMs: 5, minMs: 0.05 };

/**
 * One person's commands' share of server time (see
 * {@linkcode COMMAND_SHARE}): a transport charges each command the
 * time it took, and before the person's next line asks whether it must wait.
 *
 * @example
 * ```ts
 * import { CommandTime } from "./commands.ts";
 * import assert from "node:assert/strict";
 *
 * const time = new CommandTime({ msPerSecond: 20, burstMs: 5 });
 * time.charge(performance.now()); // a command that took next to nothing
 * assert.equal(time.wait(), undefined);
 * time.charge(performance.now() - 50); // one that took 50 ms
 * const wait = time.wait();
 * assert.ok(wait instanceof Promise);
 * time.stop(); // the person left: the wait never ends
 * ```
 */
export class CommandTime {
  readonly #share: CommandShare;
  #budget: ByteBudget | null = null;
  /** Set when a charge left the budget in debt; cleared once it is not. */
  #inDebt = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The wait under way, if any: every caller until it settles gets this one. */
  #waiting: Promise<void> | undefined;

  /** A full share: {@linkcode COMMAND_SHARE} unless given. */
  constructor(share: CommandShare = COMMAND_SHARE) {
    this.#share = share;
  }

  /** Charges a command that began at `started` (`performance.now()`) and just ended. */
  charge(started: number): void {
    const now = performance.now();
    const budget = this.#budget ??= new ByteBudget(
      this.#share.msPerSecond,
      this.#share.burstMs,
      started,
    );
    if (!budget.spend(now, Math.max(now - started, this.#share.minMs ?? 0))) this.#inDebt = true;
  }

  /**
   * Undefined while within the share (no clock read unless the last charge
   * left it in debt); otherwise a promise that settles once the debt is repaid.
   */
  wait(): Promise<void> | undefined {
    if (!this.#inDebt) return undefined;
    if (this.#waiting !== undefined) return this.#waiting;
    const ms = this.#budget!.debtTime(performance.now());
    if (ms === 0) {
      this.#inDebt = false;
      return undefined;
    }
    return this.#waiting = new Promise((resolve) => {
      this.#timer = setTimeout(() => {
        this.#timer = this.#waiting = undefined;
        resolve();
      }, ms);
    });
  }

  /** Ends a wait under way (it never settles): the person is gone. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** A line that is not a command the server knows: the error to show. */
export interface CommandError {
  readonly error: "usage" | "unknown_command";
  readonly text: string;
}

/** One help line per command, for relay mode; `relayOnly` ones are left out otherwise. */
const HELP: readonly { usage: string; text: string; relayOnly: boolean }[] = [
  {
    usage: "/nick <name>",
    text: "change your name (letters, digits, _ and -; up to 32)",
    relayOnly: false,
  },
  { usage: "/join <#room>", text: "go to a room, making it if it is new", relayOnly: true },
  {
    usage: "/part",
    text: "leave the room (line clients: back to the default room)",
    relayOnly: true,
  },
  { usage: "/rooms", text: "every room, with how many are in it and its topic", relayOnly: true },
  { usage: "/who [#room]", text: "who is in your room, or in another", relayOnly: true },
  { usage: "/whois <name>", text: "where someone is, since when, idle, away", relayOnly: true },
  { usage: "/topic [text]", text: "show or set the topic of your room", relayOnly: true },
  {
    usage: "/msg <name> <text>",
    text: "a private message (server: the operator)",
    relayOnly: false,
  },
  { usage: "/me <action>", text: "an action: ** you <action>", relayOnly: false },
  {
    usage: "/away [message]",
    text: "say you are away (again without a message: back)",
    relayOnly: true,
  },
  {
    usage: "/ignore [name]",
    text: "hide someone's lines and messages; alone: the list",
    relayOnly: true,
  },
  { usage: "/unignore <name>", text: "stop ignoring someone", relayOnly: true },
  { usage: "/history [n]", text: "the last n lines of your room again", relayOnly: true },
  { usage: "/quit [message]", text: "leave, with an optional message", relayOnly: false },
  { usage: "/help", text: "this list", relayOnly: false },
  { usage: "//text", text: "sends a line that starts with /", relayOnly: false },
];

/**
 * The help lines: every command in relay mode; without `--relay`, only those
 * that work when talking with the operator.
 */
export function helpLines(relay: boolean): string[] {
  const shown = HELP.filter((h) => relay || !h.relayOnly);
  const width = Math.max(...shown.map((h) => h.usage.length));
  return ["commands:", ...shown.map((h) => `  ${h.usage.padEnd(width)}  ${h.text}`)];
}

/** The commands, as typed (`/nick`, `/join`, …): what Tab completes. */
export function commandNames(relay: boolean): string[] {
  return HELP.filter((h) => (relay || !h.relayOnly) && !h.usage.startsWith("//"))
    .map((h) => h.usage.split(" ")[0]);
}

/** Most lines `/history` replays. */
export const MAX_HISTORY = 1000;

/**
 * Parses a typed line that starts with `/` (but not `//`) into a command.
 *
 * @example
 * ```ts
 * import { parseCommand } from "./commands.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseCommand("/join #dev"), { type: "join", room: "#dev" });
 * assert.deepEqual(parseCommand("/msg ana hola  qué tal"), { type: "msg", to: "ana", text: "hola  qué tal" });
 * assert.equal("error" in parseCommand("/frobnicate"), true);
 * ```
 */
export function parseCommand(line: string): Command | CommandError {
  const [word, rest] = splitWord(line.slice(1));
  const name = word.toLowerCase();
  const usage = (text: string): CommandError => ({ error: "usage", text: `usage: ${text}` });
  switch (name) {
    case "nick":
      return rest === "" || rest.includes(" ")
        ? usage("/nick <name>")
        : { type: "nick", name: rest };
    case "join":
    case "j":
      return rest === "" || rest.includes(" ") ? usage("/join <#room>") : {
        type: "join",
        room: rest.startsWith("#") ? rest : `#${rest}`,
      };
    case "part":
    case "leave":
      return rest === "" ? { type: "part" } : { type: "part", reason: rest };
    case "rooms":
    case "list":
      return { type: "rooms" };
    case "who":
    case "names":
      return rest === "" ? { type: "who" } : { type: "who", room: rest };
    case "whois":
      return rest === "" || rest.includes(" ")
        ? usage("/whois <name>")
        : { type: "whois", name: rest };
    case "topic":
      return rest === "" ? { type: "topic" } : { type: "topic", text: rest };
    case "msg":
    case "query": {
      const [to, text] = splitWord(rest);
      return to === "" || text === "" ? usage("/msg <name> <text>") : { type: "msg", to, text };
    }
    case "me":
      return rest === "" ? usage("/me <action>") : { type: "action", text: rest };
    case "away":
      return rest === "" ? { type: "away" } : { type: "away", text: rest };
    case "back":
      return { type: "away" };
    case "ignore":
      return rest === "" ? { type: "ignore" } : { type: "ignore", name: rest };
    case "unignore":
      return rest === "" ? usage("/unignore <name>") : { type: "unignore", name: rest };
    case "history": {
      if (rest === "") return { type: "history" };
      if (!/^\d{1,4}$/.test(rest) || Number(rest) < 1) {
        return usage(`/history [n] (n from 1 to ${MAX_HISTORY})`);
      }
      return { type: "history", count: Math.min(Number(rest), MAX_HISTORY) };
    }
    case "quit":
    case "exit":
      return rest === "" ? { type: "quit" } : { type: "quit", reason: rest };
    case "help":
      return { type: "help" };
    default:
      return {
        error: "unknown_command",
        text: `unknown command "/${name}"; /help lists the commands`,
      };
  }
}
