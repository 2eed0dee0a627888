/**
 * The web page's WebSocket protocol, without the socket: what a frame from a
 * browser means ({@linkcode parseFrame}), how a typed line becomes a command
 * ({@linkcode lineCommand}), and which close code goes with which goodbye
 * ({@linkcode closeCode}). Server to browser, every frame is one core
 * `ChatEvent` as JSON (see json_format.ts), or, for a client that connected
 * to `/ws?batch=1`, possibly a JSON array of them, in order. The `welcome`
 * carries two more fields: `resume` (this connection's token) and `limits`
 * (`maxLine`, `flood`, `idleSeconds`). Browser to server, one of:
 *
 * - a `Command` as it is typed in core/messages.ts: `{"type":"join","room":"#dev"}`;
 * - `{"type":"line","room":"#dev","text":"hola"}`: a line as typed in the box,
 *   `/commands` included, read exactly as a line client's line (plain text is
 *   said in `room`; a command that can name a room and does not gets `room`);
 * - `{"type":"pass","password":"…"}`: first, when the server asks for one;
 * - `{"type":"resume","token":"…"}`: the `resume` token of an earlier
 *   connection's `welcome`, which ends that connection at once (it frees the
 *   name for this one).
 *
 * @module
 */

import { type CommandError, MAX_HISTORY, parseCommand } from "../core/commands.ts";
import type { ClosingReason, Command, ErrorCode, RoomName } from "../core/messages.ts";
import { sanitizeText } from "../wire/text.ts";

/** What one frame from a browser asks for. */
export type WebInput =
  | { readonly kind: "command"; readonly command: Command }
  | { readonly kind: "line"; readonly room: RoomName; readonly text: string }
  | { readonly kind: "pass"; readonly password: string }
  | { readonly kind: "resume"; readonly token: string };

/** A frame that means nothing: the error to send back (the connection goes on). */
export interface FrameError {
  readonly error: ErrorCode;
  readonly text: string;
}

/** The fields a command frame may have, and their types (`?`: optional). */
type FieldType = "string" | "string?" | "boolean?" | "count?";

/** Every command a frame may carry, with its fields. */
const COMMAND_FIELDS: Readonly<Record<Command["type"], Readonly<Record<string, FieldType>>>> = {
  say: { text: "string", room: "string?" },
  action: { text: "string", room: "string?" },
  msg: { to: "string", text: "string", action: "boolean?" },
  join: { room: "string" },
  part: { room: "string?", reason: "string?" },
  nick: { name: "string" },
  topic: { room: "string?", text: "string?" },
  who: { room: "string?" },
  whois: { name: "string" },
  rooms: {},
  away: { text: "string?" },
  ignore: { name: "string?" },
  unignore: { name: "string" },
  history: { room: "string?", count: "count?" },
  quit: { reason: "string?" },
  help: {},
};

/** The frames that are not commands, with their fields. */
const OTHER_FIELDS: Readonly<Record<string, Readonly<Record<string, FieldType>>>> = {
  line: { room: "string", text: "string" },
  pass: { password: "string" },
  resume: { token: "string" },
};

/**
 * Reads one text frame from a browser. Anything that is not one JSON object of
 * a known type with fields of the right types is a {@linkcode FrameError};
 * fields that are not listed are ignored.
 *
 * @example
 * ```ts
 * import { parseFrame } from "./web_protocol.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseFrame('{"type":"join","room":"#dev"}'), {
 *   kind: "command",
 *   command: { type: "join", room: "#dev" },
 * });
 * assert.deepEqual(parseFrame('{"type":"line","room":"#dev","text":"hola"}'), {
 *   kind: "line",
 *   room: "#dev",
 *   text: "hola",
 * });
 * const codeOf = (text: string) => {
 *   const read = parseFrame(text);
 *   return "error" in read ? read.error : null;
 * };
 * assert.equal(codeOf("hola"), "usage");
 * assert.equal(codeOf('{"type":"join","room":7}'), "usage");
 * assert.equal(codeOf('{"type":"frobnicate"}'), "unknown_command");
 * ```
 */
export function parseFrame(text: string): WebInput | FrameError {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {
      error: "usage",
      text: `a frame must be one JSON object such as {"type":"line","room":"#lobby","text":"hola"}`,
    };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { error: "usage", text: 'a frame must be one JSON object with a "type"' };
  }
  const frame = value as Record<string, unknown>;
  const type = frame.type;
  if (typeof type !== "string") {
    return { error: "usage", text: 'a frame must have a "type", such as "line" or "join"' };
  }
  const fields = Object.hasOwn(COMMAND_FIELDS, type)
    ? COMMAND_FIELDS[type as Command["type"]]
    : Object.hasOwn(OTHER_FIELDS, type)
    ? OTHER_FIELDS[type]
    : undefined;
  if (fields === undefined) {
    return { error: "unknown_command", text: `unknown frame type ${JSON.stringify(type)}` };
  }
  // Only the listed fields are copied: the core gets exactly the shape it expects.
  const clean: Record<string, unknown> = { type };
  for (const [name, kind] of Object.entries(fields)) {
    const field = frame[name];
    if (field === undefined && kind.endsWith("?")) continue;
    const problem = checkField(field, kind);
    if (problem !== null) {
      return { error: "usage", text: `"${type}" needs "${name}" to be ${problem}` };
    }
    clean[name] = field;
  }
  switch (type) {
    case "line":
      return { kind: "line", room: clean.room as string, text: clean.text as string };
    case "pass":
      return { kind: "pass", password: clean.password as string };
    case "resume":
      return { kind: "resume", token: clean.token as string };
    default:
      return { kind: "command", command: clean as unknown as Command };
  }
}

/** What is wrong with a field, or null. */
function checkField(value: unknown, kind: FieldType): string | null {
  switch (kind) {
    case "string":
    case "string?":
      return typeof value === "string" ? null : "a string";
    case "boolean?":
      return typeof value === "boolean" ? null : "true or false";
    case "count?":
      return Number.isInteger(value) && (value as number) >= 1 &&
          (value as number) <= MAX_HISTORY
        ? null
        : `a whole number from 1 to ${MAX_HISTORY}`;
  }
}

/** The commands that act on one room and name it when they are not about the person's first. */
const ROOM_COMMANDS: ReadonlySet<Command["type"]> = new Set([
  "say",
  "action",
  "part",
  "topic",
  "who",
  "history",
]);

/**
 * A line typed in the page's box while `room` is shown, as the command it
 * stands for: read as a line client's line (a `/command`, `//text` for a line
 * that starts with `/`, or text to say), then aimed at `room` when the command
 * can name a room and the line did not.
 *
 * @example
 * ```ts
 * import { lineCommand } from "./web_protocol.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(lineCommand("#dev", "hola"), { type: "say", room: "#dev", text: "hola" });
 * assert.deepEqual(lineCommand("#dev", "/me waves"), { type: "action", room: "#dev", text: "waves" });
 * assert.deepEqual(lineCommand("#dev", "//etc"), { type: "say", room: "#dev", text: "/etc" });
 * assert.deepEqual(lineCommand("#dev", "/join #ops"), { type: "join", room: "#ops" });
 * assert.deepEqual(lineCommand("#dev", "/who #ops"), { type: "who", room: "#ops" });
 * ```
 */
export function lineCommand(room: RoomName, text: string): Command | CommandError {
  if (!text.startsWith("/") || text.startsWith("//")) {
    return { type: "say", room, text: text.startsWith("//") ? text.slice(1) : text };
  }
  const command = parseCommand(sanitizeText(text));
  if ("error" in command) return command;
  if (ROOM_COMMANDS.has(command.type) && !("room" in command && command.room !== undefined)) {
    return { ...command, room } as Command;
  }
  return command;
}

/**
 * WebSocket close codes for why the server ends a connection (the reason of the
 * `closing` event sent just before). 1000 and 1001 are the standard ones; the
 * 4000s are charla's: the page does not reconnect after 4001 and 4003.
 */
export const CLOSE_CODES: Readonly<
  Record<ClosingReason | "replaced" | "password" | "slow", number>
> = {
  quit: 1000,
  shutdown: 1001,
  /** Dropped as too slow: 1008, policy violation. */
  slow: 1008,
  replaced: 4000,
  kicked: 4001,
  timeout: 4002,
  banned: 4003,
  password: 4004,
};

/**
 * The close code for a `closing` reason (undefined: no `closing` event was sent,
 * as when someone's connection replaced this one).
 *
 * @example
 * ```ts
 * import { closeCode } from "./web_protocol.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(closeCode("kicked"), 4001);
 * assert.equal(closeCode(undefined), 1000);
 * ```
 */
export function closeCode(reason: keyof typeof CLOSE_CODES | undefined): number {
  return reason === undefined ? 1000 : CLOSE_CODES[reason];
}

/**
 * A close frame's reason text: at most 123 bytes of UTF-8 (the protocol's
 * limit), cut at a character.
 *
 * @example
 * ```ts
 * import { closeText } from "./web_protocol.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(closeText("you were kicked"), "you were kicked");
 * assert.equal(new TextEncoder().encode(closeText("ñ".repeat(100))).length, 122);
 * ```
 */
export function closeText(text: string): string {
  const encoder = new TextEncoder();
  if (encoder.encode(text).length <= 123) return text;
  let cut = text;
  while (encoder.encode(cut).length > 123) cut = cut.slice(0, -1);
  // Do not leave half a surrogate pair at the end.
  return /[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut;
}
