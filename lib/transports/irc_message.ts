/**
 * IRC messages as values: parsing one line, formatting one, and the rules a small
 * server needs around them (length limits, splitting long text, CTCP ACTION,
 * case folding, charla's name rules, numerics, `server-time`, ISUPPORT).
 *
 * Pure: no sockets, no clock (times are passed in). The grammar is the one of
 * the "Modern IRC" client protocol document and IRCv3 message tags:
 *
 * ```text
 * message = ["@" tags SPACE] [":" source SPACE] command params
 * params  = *(SPACE middle) [SPACE ":" trailing]
 * ```
 *
 * A line is at most {@linkcode MAX_LINE_BYTES} (512) bytes without its tags,
 * CR LF included; the tags of a client's line at most
 * {@linkcode MAX_CLIENT_TAG_BYTES} (4,094) bytes, and of any line
 * {@linkcode MAX_TAG_SECTION_BYTES} (8,191) bytes with the `@` and the space.
 *
 * @example A PRIVMSG in, a PRIVMSG out
 * ```ts
 * import { formatMessage, parseMessage } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * const m = parseMessage("@time=2026-11-28T12:00:00.000Z :ana!ana@charla PRIVMSG #lobby :hola a todos");
 * assert.equal(m.command, "PRIVMSG");
 * assert.deepEqual(m.params, ["#lobby", "hola a todos"]);
 * assert.equal(m.tags.get("time"), "2026-11-28T12:00:00.000Z");
 * assert.equal(formatMessage(m), "@time=2026-11-28T12:00:00.000Z :ana!ana@charla PRIVMSG #lobby :hola a todos");
 * ```
 *
 * @module
 */

/** Longest line without its tags, CR LF included (RFC 1459, Modern IRC). */
export const MAX_LINE_BYTES = 512;

/**
 * Most tag bytes a client may send, without the leading `@` and the space after
 * (IRCv3 message-tags): a server answers a longer line with 417 ERR_INPUTTOOLONG.
 */
export const MAX_CLIENT_TAG_BYTES = 4094;

/**
 * Longest tag section of any line, the `@` and the space after included (IRCv3
 * message-tags): a client's 4,094 bytes plus as many added by the server.
 */
export const MAX_TAG_SECTION_BYTES = 8191;

/** One IRC message. */
export interface IrcMessage {
  /** Message tags, unescaped; a tag without a value (or with `=` and nothing) maps to `""`. */
  tags: Map<string, string>;
  /** Who sent it (`nick!user@host` or a server name), or null when the line had none. */
  source: string | null;
  /** The command, upper-cased (`PRIVMSG`), or a three-digit numeric (`001`). */
  command: string;
  /** The parameters; the last one may hold spaces or be empty. */
  params: string[];
}

/** What a message to format needs: tags and source may be left out. */
export interface IrcMessageInit {
  /** Message tags; values are escaped when formatted, `""` writes the key alone. */
  tags?: Map<string, string> | Record<string, string>;
  /** Who sends it, or null/absent for none. */
  source?: string | null;
  /** The command or numeric. */
  command: string;
  /** The parameters; only the last may be empty, start with `:` or hold a space. */
  params?: readonly string[];
}

/** Why a line is not a valid IRC message. */
export type IrcParseErrorReason =
  /** Nothing but spaces: servers ignore such lines. */
  | "empty"
  /** Over {@linkcode MAX_LINE_BYTES} without the tags: answer 417 ERR_INPUTTOOLONG. */
  | "line-too-long"
  /** Tags over the limit: answer 417 ERR_INPUTTOOLONG. */
  | "tags-too-long"
  /** Not UTF-8: answer `FAIL <command> INVALID_UTF8`. */
  | "invalid-utf8"
  /** A NUL, CR or LF inside the line. */
  | "forbidden-character"
  /** A tag key with characters other than letters, digits, `-` (and `+`, `/`, `.`). */
  | "bad-tag"
  /** `:` with no source after it, or a source and no command. */
  | "bad-source"
  /** No command, or one that is neither letters nor three digits. */
  | "bad-command";

/** A line that is not a valid IRC message; `reason` says how to answer it. */
export class IrcParseError extends Error {
  /** What is wrong, for the caller to pick its answer. */
  readonly reason: IrcParseErrorReason;
  /** The command, when the line got far enough to tell it (for `FAIL <command> …`). */
  readonly command: string | undefined;

  /** `message` is a sentence for a log; `reason` is the machine-readable kind. */
  constructor(
    message: string,
    reason: IrcParseErrorReason,
    options?: ErrorOptions & { command?: string },
  ) {
    super(message, options);
    this.name = "IrcParseError";
    this.reason = reason;
    this.command = options?.command;
  }
}

/** Options of {@linkcode parseMessage}. */
export interface ParseOptions {
  /**
   * Most tag bytes accepted, without the `@` and the space after. Use
   * `MAX_TAG_SECTION_BYTES - 2` for lines from a server.
   * @default {MAX_CLIENT_TAG_BYTES}
   */
  maxTagBytes?: number;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const lenientDecoder = new TextDecoder();

const SPACE = 0x20;
const TAG_KEY = /^\+?(?:[A-Za-z0-9.-]+\/)?[A-Za-z0-9-]+$/;
const COMMAND = /^(?:[A-Za-z]+|[0-9]{3})$/;

/**
 * Parses one IRC line (a string, or its bytes as read from a socket). A final
 * CR LF or LF is allowed and ignored. Runs of spaces between parts count as one,
 * and spaces at the end of the line (outside a trailing parameter) are ignored,
 * as the Modern IRC document allows; the command is upper-cased.
 *
 * @throws {IrcParseError} for a line that is empty, too long, not UTF-8, or
 * malformed; its `reason` tells which.
 *
 * @example
 * ```ts
 * import { IrcParseError, parseMessage } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseMessage("join #lobby").params, ["#lobby"]);
 * assert.equal(parseMessage("join #lobby").command, "JOIN");
 * assert.throws(() => parseMessage(":ana"), IrcParseError);
 * ```
 */
export function parseMessage(line: string | Uint8Array, options: ParseOptions = {}): IrcMessage {
  const maxTagBytes = options.maxTagBytes ?? MAX_CLIENT_TAG_BYTES;
  if (typeof line === "string") {
    const text = stripEnd(line);
    checkTextLengths(text, maxTagBytes);
    return parseText(text);
  }
  let end = line.length;
  if (end > 0 && line[end - 1] === 0x0a) end--;
  if (end > 0 && line[end - 1] === 0x0d) end--;
  const bytes = line.subarray(0, end);
  // Check the lengths on the bytes first: a peer must not make us decode (or
  // report) more than the limits allow.
  checkByteLengths(bytes, maxTagBytes);
  let text: string;
  try {
    text = strictDecoder.decode(bytes);
  } catch (cause) {
    const command = guessCommand(lenientDecoder.decode(bytes));
    throw new IrcParseError(
      `Line is not valid UTF-8${command ? ` (command ${command})` : ""}`,
      "invalid-utf8",
      { cause, ...(command ? { command } : {}) },
    );
  }
  return parseText(text);
}

function stripEnd(line: string): string {
  if (line.endsWith("\r\n")) return line.slice(0, -2);
  if (line.endsWith("\n")) return line.slice(0, -1);
  return line;
}

/** Checks the tag section and the rest of a line, as bytes, against the limits. */
function checkByteLengths(bytes: Uint8Array, maxTagBytes: number): void {
  let at = 0;
  if (bytes[0] === 0x40) {
    let space = bytes.indexOf(SPACE);
    if (space < 0) space = bytes.length;
    if (space - 1 > maxTagBytes) throw tagsTooLong(space - 1, maxTagBytes);
    at = space;
    while (bytes[at] === SPACE) at++;
  }
  const rest = bytes.length - at + 2;
  if (rest > MAX_LINE_BYTES) throw lineTooLong(rest);
}

/** Checks the tag section and the rest of a line, as text, by their UTF-8 lengths. */
function checkTextLengths(text: string, maxTagBytes: number): void {
  let at = 0;
  if (text.charCodeAt(0) === 0x40) {
    let space = text.indexOf(" ");
    if (space < 0) space = text.length;
    const length = utf8Length(text.slice(1, space));
    if (length > maxTagBytes) throw tagsTooLong(length, maxTagBytes);
    at = space;
    while (text.charCodeAt(at) === SPACE) at++;
  }
  const rest = utf8Length(at === 0 ? text : text.slice(at)) + 2;
  if (rest > MAX_LINE_BYTES) throw lineTooLong(rest);
}

function tagsTooLong(length: number, max: number): IrcParseError {
  return new IrcParseError(
    `Message tags of ${length} bytes are over the limit of ${max}`,
    "tags-too-long",
  );
}

function lineTooLong(length: number): IrcParseError {
  return new IrcParseError(
    `Line of ${length} bytes (with CR LF, without tags) is over the limit of ${MAX_LINE_BYTES}`,
    "line-too-long",
  );
}

/** The command of a line that failed to parse for another reason, if one can be told. */
function guessCommand(text: string): string | undefined {
  const words = text.split(" ").filter((w) => w !== "");
  let i = 0;
  if (words[i]?.startsWith("@")) i++;
  if (words[i]?.startsWith(":")) i++;
  const command = words[i];
  return command !== undefined && COMMAND.test(command) ? command.toUpperCase() : undefined;
}

function parseText(text: string): IrcMessage {
  if (/[\0\r\n]/.test(text)) {
    const command = guessCommand(text);
    throw new IrcParseError(
      "Line holds a NUL, CR or LF character",
      "forbidden-character",
      command ? { command } : {},
    );
  }
  let at = 0;
  const skipSpaces = () => {
    while (text.charCodeAt(at) === SPACE) at++;
  };
  const word = () => {
    let end = text.indexOf(" ", at);
    if (end < 0) end = text.length;
    const w = text.slice(at, end);
    at = end;
    return w;
  };

  const tags = new Map<string, string>();
  if (text.charCodeAt(0) === 0x40) {
    at = 1;
    parseTags(word(), tags);
    skipSpaces();
    if (at >= text.length) throw new IrcParseError("Line has tags and no command", "bad-command");
  }
  skipSpaces();
  if (at >= text.length) throw new IrcParseError("Line has no command", "empty");

  let source: string | null = null;
  if (text.charCodeAt(at) === 0x3a) {
    at++;
    source = word();
    if (source === "") throw new IrcParseError('Line has ":" and no source after it', "bad-source");
    skipSpaces();
    if (at >= text.length) {
      throw new IrcParseError(`Line has a source "${source}" and no command`, "bad-source");
    }
  }

  const command = word();
  if (!COMMAND.test(command)) {
    throw new IrcParseError(
      `Command "${command}" is neither letters nor a three-digit numeric`,
      "bad-command",
    );
  }

  const params: string[] = [];
  while (true) {
    skipSpaces();
    if (at >= text.length) break;
    if (text.charCodeAt(at) === 0x3a) {
      params.push(text.slice(at + 1));
      break;
    }
    params.push(word());
  }
  return { tags, source, command: command.toUpperCase(), params };
}

function parseTags(raw: string, tags: Map<string, string>): void {
  for (const tag of raw.split(";")) {
    // Empty tags ("@a;;b", "@a;") are skipped: some clients leave a final ";".
    if (tag === "") continue;
    const eq = tag.indexOf("=");
    const key = eq < 0 ? tag : tag.slice(0, eq);
    if (!TAG_KEY.test(key)) {
      throw new IrcParseError(`Tag key "${key}" is not valid`, "bad-tag");
    }
    // A repeated key: the last one wins (IRCv3 message-tags).
    tags.set(key, eq < 0 ? "" : unescapeTagValue(tag.slice(eq + 1)));
  }
}

const UNESCAPE: Record<string, string> = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };

/**
 * Undoes tag value escaping: `\:` `\s` `\\` `\r` `\n`; a backslash before any
 * other character is dropped, and a final lone backslash too (IRCv3).
 *
 * @example
 * ```ts
 * import { unescapeTagValue } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(unescapeTagValue("a\\sb\\:c\\\\d"), "a b;c\\d");
 * ```
 */
export function unescapeTagValue(value: string): string {
  if (!value.includes("\\")) return value;
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const next = value[++i];
    if (next === undefined) break;
    out += UNESCAPE[next] ?? next;
  }
  return out;
}

/**
 * Escapes a tag value: `;` `\s` `\\` `\r` `\n` as IRCv3 says.
 *
 * @example
 * ```ts
 * import { escapeTagValue } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeTagValue("a b;c\\d"), "a\\sb\\:c\\\\d");
 * ```
 */
export function escapeTagValue(value: string): string {
  return value.replace(
    /[; \\\r\n]/g,
    (c) => c === ";" ? "\\:" : c === " " ? "\\s" : c === "\\" ? "\\\\" : c === "\r" ? "\\r" : "\\n",
  );
}

/**
 * Formats a message as one line, without the CR LF (add `"\r\n"` to send it).
 * The last parameter is written as a trailing one (`:text`) when it has to be:
 * when it is empty, starts with `:` or holds a space.
 *
 * @throws {RangeError} for what no line can carry: a command that is not
 * letters or three digits, a bad tag key, a source with a space, a NUL/CR/LF
 * anywhere, or a parameter before the last that is empty, starts with `:` or
 * holds a space.
 *
 * @example
 * ```ts
 * import { formatMessage } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatMessage({ command: "JOIN", params: ["#lobby"] }), "JOIN #lobby");
 * assert.equal(
 *   formatMessage({ source: "charla", command: "001", params: ["ana", "Welcome, ana"] }),
 *   ":charla 001 ana :Welcome, ana",
 * );
 * ```
 */
export function formatMessage(message: IrcMessageInit): string {
  const { command } = message;
  if (!COMMAND.test(command)) throw new RangeError(`Invalid IRC command "${command}"`);
  let line = "";
  const tags = message.tags instanceof Map ? message.tags : Object.entries(message.tags ?? {});
  let first = true;
  for (const [key, value] of tags) {
    if (!TAG_KEY.test(key)) throw new RangeError(`Invalid tag key "${key}"`);
    if (/\0/.test(value)) throw new RangeError(`Tag "${key}" holds a NUL character`);
    line += (first ? "@" : ";") + key + (value === "" ? "" : "=" + escapeTagValue(value));
    first = false;
  }
  if (!first) line += " ";
  const { source } = message;
  if (source !== undefined && source !== null) {
    if (source === "" || /[ \0\r\n]/.test(source)) {
      throw new RangeError(`Invalid source "${source}"`);
    }
    line += ":" + source + " ";
  }
  line += command;
  const params = message.params ?? [];
  for (let i = 0; i < params.length; i++) {
    const param = params[i];
    if (/[\0\r\n]/.test(param)) {
      throw new RangeError(`Parameter ${i + 1} holds a NUL, CR or LF character`);
    }
    const needsTrailing = param === "" || param.charCodeAt(0) === 0x3a || param.includes(" ");
    if (i < params.length - 1) {
      if (needsTrailing) {
        throw new RangeError(
          `Parameter ${i + 1} ("${param}") is empty, starts with ":" or holds a space, ` +
            "and only the last may",
        );
      }
      line += " " + param;
    } else {
      line += (needsTrailing ? " :" : " ") + param;
    }
  }
  return line;
}

/**
 * The UTF-8 length of `text` in bytes, as `TextEncoder` would write it (a lone
 * surrogate counts 3, for the U+FFFD it becomes), without encoding it.
 *
 * @example
 * ```ts
 * import { utf8Length } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(utf8Length("añ你😀"), 1 + 2 + 3 + 4);
 * ```
 */
export function utf8Length(text: string): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) length += 1;
    else if (c < 0x800) length += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        length += 4;
        i++;
      } else {
        length += 3;
      }
    } else length += 3;
  }
  return length;
}

/** What {@linkcode textBudget} needs to know about the lines the text goes in. */
export interface TextLine {
  /** The source the receivers see, `nick!user@host`. */
  source: string;
  /** `PRIVMSG` or `NOTICE`. */
  command: string;
  /** The channel or nick it goes to. */
  target: string;
  /** Whether each piece is wrapped as a CTCP ACTION (`/me`), which takes 9 bytes more. */
  action?: boolean;
}

/**
 * How many bytes of text fit in one `:source COMMAND target :text` line within
 * {@linkcode MAX_LINE_BYTES}, CR LF included.
 *
 * @example
 * ```ts
 * import { textBudget } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * // ":ana!ana@charla PRIVMSG #lobby :" is 32 bytes, CR LF 2 more.
 * assert.equal(textBudget({ source: "ana!ana@charla", command: "PRIVMSG", target: "#lobby" }), 478);
 * ```
 */
export function textBudget(line: TextLine): number {
  const overhead = 1 + utf8Length(line.source) + 1 + utf8Length(line.command) + 1 +
    utf8Length(line.target) + 2 + 2 + (line.action ? ACTION_OVERHEAD : 0);
  return MAX_LINE_BYTES - overhead;
}

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/**
 * Splits text into pieces of at most `maxBytes` UTF-8 bytes each, for the
 * trailing parameter of several lines (see {@linkcode textBudget}). Joined, the
 * pieces are exactly `text`: no byte is lost or added. A cut never falls inside
 * a character, nor inside a grapheme (a flag, a family emoji, a letter and its
 * accent) unless the grapheme alone is longer than `maxBytes`. When there is a
 * space in the last quarter of a piece, the cut is made just after it, so words
 * stay whole and the space ends the earlier line.
 *
 * Text that fits comes back as one piece (`""` as `[""]`).
 *
 * @throws {RangeError} when `maxBytes` is under 4 (one character may need 4),
 * or the text holds a NUL, CR or LF (one message is one line).
 *
 * @example
 * ```ts
 * import { splitText } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(splitText("hola a todos", 8), ["hola a ", "todos"]);
 * assert.deepEqual(splitText("你好你好", 7), ["你好", "你好"]);
 * ```
 */
export function splitText(text: string, maxBytes: number): string[] {
  if (!Number.isInteger(maxBytes) || maxBytes < 4) {
    throw new RangeError(`maxBytes must be a whole number of at least 4, got ${maxBytes}`);
  }
  if (/[\0\r\n]/.test(text)) throw new RangeError("Text to split holds a NUL, CR or LF character");
  if (utf8Length(text) <= maxBytes) return [text];

  const lookBack = Math.floor(maxBytes / 4);
  const pieces: string[] = [];
  let start = 0; // where the current piece starts in `text`
  let bytes = 0; // its length so far
  let spaceEnd = -1; // the index just after its last space, or -1
  let bytesAtSpace = 0; // its length up to and including that space

  const add = (at: number, unit: string) => {
    const length = utf8Length(unit);
    if (bytes + length > maxBytes) {
      // After the last space when it is near the end, and what follows it
      // still leaves room for this unit; otherwise right here.
      if (
        spaceEnd > start && bytesAtSpace >= maxBytes - lookBack &&
        bytes - bytesAtSpace + length <= maxBytes
      ) {
        pieces.push(text.slice(start, spaceEnd));
        bytes -= bytesAtSpace;
        start = spaceEnd;
      } else {
        pieces.push(text.slice(start, at));
        bytes = 0;
        start = at;
      }
      spaceEnd = -1;
    }
    bytes += length;
    if (unit === " ") {
      spaceEnd = at + 1;
      bytesAtSpace = bytes;
    }
  };

  for (const { segment, index } of segmenter.segment(text)) {
    if (segment.length <= 2 || utf8Length(segment) <= maxBytes) {
      add(index, segment);
      continue;
    }
    // A grapheme longer than a whole piece (a letter under hundreds of
    // combining marks): cut it between its code points.
    let at = index;
    for (const codePoint of segment) {
      add(at, codePoint);
      at += codePoint.length;
    }
  }
  pieces.push(text.slice(start));
  return pieces;
}

/** Bytes a CTCP ACTION adds around its text: `\x01ACTION ` and `\x01`. */
export const ACTION_OVERHEAD = 9;

/**
 * Wraps text as a CTCP ACTION, what `/me waves` sends as PRIVMSG text.
 *
 * @example
 * ```ts
 * import { encodeAction } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeAction("waves"), "\x01ACTION waves\x01");
 * ```
 */
export function encodeAction(text: string): string {
  return `\x01ACTION ${text}\x01`;
}

/** A CTCP message: `\x01COMMAND params\x01` in a PRIVMSG or NOTICE. */
export interface Ctcp {
  /** The CTCP command, as sent (`ACTION`, `VERSION`, `PING`). */
  command: string;
  /** The text after the command and one space; `""` when there is none. */
  params: string;
}

/**
 * Reads PRIVMSG/NOTICE text as CTCP, or returns null when it is not (it does
 * not start with `\x01`, or has no command). The final `\x01` may be missing,
 * as some clients leave it out.
 *
 * @example
 * ```ts
 * import { parseCtcp } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseCtcp("\x01VERSION\x01"), { command: "VERSION", params: "" });
 * assert.equal(parseCtcp("hola"), null);
 * ```
 */
export function parseCtcp(text: string): Ctcp | null {
  if (text.charCodeAt(0) !== 1) return null;
  const end = text.length > 1 && text.endsWith("\x01") ? text.length - 1 : text.length;
  const body = text.slice(1, end);
  const space = body.indexOf(" ");
  const command = space < 0 ? body : body.slice(0, space);
  if (command === "" || command.includes("\x01")) return null;
  return { command, params: space < 0 ? "" : body.slice(space + 1) };
}

/**
 * The text of a CTCP ACTION (`/me`), or null when `text` is not one.
 * `\x01ACTION waves` (no final `\x01`) is `"waves"` too.
 *
 * @example
 * ```ts
 * import { decodeAction } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeAction("\x01ACTION waves\x01"), "waves");
 * assert.equal(decodeAction("\x01ACTION waves"), "waves");
 * assert.equal(decodeAction("waves"), null);
 * ```
 */
export function decodeAction(text: string): string | null {
  const ctcp = parseCtcp(text);
  return ctcp?.command === "ACTION" ? ctcp.params : null;
}

/** The CASEMAPPING charla declares: only A-Z and a-z are the same letters. */
export const CASEMAPPING = "ascii";

/**
 * Folds a nick or channel name for comparison under `CASEMAPPING=ascii`: A-Z
 * become a-z, and nothing else changes (not `[]\^`, not non-ASCII letters).
 *
 * @example
 * ```ts
 * import { foldCase } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(foldCase("#Lobby"), "#lobby");
 * assert.equal(foldCase("[Ñ]"), "[Ñ]");
 * ```
 */
export function foldCase(name: string): string {
  return name.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

/** Longest nick, and longest room name after its `#`. */
export const MAX_NAME_LENGTH = 32;

const NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** Why a nick or channel name was refused, as the numeric and text to answer with. */
export interface NameRefusal {
  /** The numeric: 432 for a nick, 479 or 403 for a channel. */
  numeric: string;
  /** The human text for the numeric's last parameter. */
  text: string;
}

/**
 * Checks a nick against charla's name rules: 1 to 32 ASCII letters, digits, `_`
 * and `-`, and not digits only. IRC allows `[]\`^{}|` in nicks; charla does not
 * (a name must read the same on every transport), so they get 432
 * ERR_ERRONEUSNICKNAME like any other bad nick. Returns null for a good one.
 * Reserved names (`server`, `admin`, `user<n>`…) are the core's to refuse.
 *
 * @example
 * ```ts
 * import { checkNick } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkNick("ana_1"), null);
 * assert.equal(checkNick("[ana]")?.numeric, "432");
 * ```
 */
export function checkNick(nick: string): NameRefusal | null {
  if (nick.length === 0) {
    return { numeric: NUMERICS.ERR_NONICKNAMEGIVEN, text: "No nickname given" };
  }
  if (!NAME.test(nick)) {
    return {
      numeric: NUMERICS.ERR_ERRONEUSNICKNAME,
      text: nick.length > MAX_NAME_LENGTH
        ? `Erroneous nickname: longer than ${MAX_NAME_LENGTH} characters`
        : "Erroneous nickname: use only letters, digits, _ and -",
    };
  }
  if (/^[0-9]+$/.test(nick)) {
    return {
      numeric: NUMERICS.ERR_ERRONEUSNICKNAME,
      text: "Erroneous nickname: digits only",
    };
  }
  return null;
}

/**
 * Checks a channel name against charla's room rules: `#` and then 1 to 32 ASCII
 * letters, digits, `_` and `-`. A name that does not start with `#` is no
 * channel at all here (403 ERR_NOSUCHCHANNEL); one that does but breaks the
 * rules is a bad name (479 ERR_BADCHANNAME). Returns null for a good one.
 *
 * @example
 * ```ts
 * import { checkChannel } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkChannel("#lobby"), null);
 * assert.equal(checkChannel("#lob.by")?.numeric, "479");
 * assert.equal(checkChannel("&lobby")?.numeric, "403");
 * ```
 */
export function checkChannel(name: string): NameRefusal | null {
  if (!name.startsWith("#")) {
    return { numeric: NUMERICS.ERR_NOSUCHCHANNEL, text: "No such channel" };
  }
  if (!NAME.test(name.slice(1))) {
    return {
      numeric: NUMERICS.ERR_BADCHANNAME,
      text: name.length - 1 > MAX_NAME_LENGTH
        ? `Illegal channel name: longer than ${MAX_NAME_LENGTH} characters after #`
        : "Illegal channel name: use # and then only letters, digits, _ and -",
    };
  }
  return null;
}

/**
 * The numerics a small server sends, by their names in the Modern IRC document
 * (and IRCv3 for 900-908). Numerics are strings: `"001"`, as on the wire.
 */
export const NUMERICS = {
  RPL_WELCOME: "001",
  RPL_YOURHOST: "002",
  RPL_CREATED: "003",
  RPL_MYINFO: "004",
  RPL_ISUPPORT: "005",
  RPL_UMODEIS: "221",
  RPL_LUSERCLIENT: "251",
  RPL_LUSEROP: "252",
  RPL_LUSERUNKNOWN: "253",
  RPL_LUSERCHANNELS: "254",
  RPL_LUSERME: "255",
  RPL_TRYAGAIN: "263",
  RPL_LOCALUSERS: "265",
  RPL_GLOBALUSERS: "266",
  RPL_AWAY: "301",
  RPL_USERHOST: "302",
  RPL_ISON: "303",
  RPL_UNAWAY: "305",
  RPL_NOWAWAY: "306",
  RPL_WHOISUSER: "311",
  RPL_WHOISSERVER: "312",
  RPL_WHOISOPERATOR: "313",
  RPL_ENDOFWHO: "315",
  RPL_WHOISIDLE: "317",
  RPL_ENDOFWHOIS: "318",
  RPL_WHOISCHANNELS: "319",
  RPL_LISTSTART: "321",
  RPL_LIST: "322",
  RPL_LISTEND: "323",
  RPL_CHANNELMODEIS: "324",
  RPL_CREATIONTIME: "329",
  RPL_NOTOPIC: "331",
  RPL_TOPIC: "332",
  RPL_TOPICWHOTIME: "333",
  RPL_ENDOFINVITELIST: "347",
  RPL_ENDOFEXCEPTLIST: "349",
  RPL_VERSION: "351",
  RPL_WHOREPLY: "352",
  RPL_NAMREPLY: "353",
  RPL_WHOSPCRPL: "354",
  RPL_ENDOFNAMES: "366",
  RPL_ENDOFBANLIST: "368",
  RPL_MOTD: "372",
  RPL_MOTDSTART: "375",
  RPL_ENDOFMOTD: "376",
  RPL_WHOISHOST: "378",
  RPL_YOUREOPER: "381",
  RPL_TIME: "391",
  ERR_UNKNOWNERROR: "400",
  ERR_NOSUCHNICK: "401",
  ERR_NOSUCHSERVER: "402",
  ERR_NOSUCHCHANNEL: "403",
  ERR_CANNOTSENDTOCHAN: "404",
  ERR_TOOMANYCHANNELS: "405",
  ERR_NOORIGIN: "409",
  ERR_INVALIDCAPCMD: "410",
  ERR_NORECIPIENT: "411",
  ERR_NOTEXTTOSEND: "412",
  ERR_INPUTTOOLONG: "417",
  ERR_UNKNOWNCOMMAND: "421",
  ERR_NOMOTD: "422",
  ERR_NONICKNAMEGIVEN: "431",
  ERR_ERRONEUSNICKNAME: "432",
  ERR_NICKNAMEINUSE: "433",
  ERR_USERNOTINCHANNEL: "441",
  ERR_NOTONCHANNEL: "442",
  ERR_NOTREGISTERED: "451",
  ERR_NEEDMOREPARAMS: "461",
  ERR_ALREADYREGISTERED: "462",
  ERR_PASSWDMISMATCH: "464",
  ERR_YOUREBANNEDCREEP: "465",
  ERR_CHANNELISFULL: "471",
  ERR_UNKNOWNMODE: "472",
  ERR_BANNEDFROMCHAN: "474",
  ERR_BADCHANMASK: "476",
  ERR_BADCHANNAME: "479",
  ERR_NOPRIVILEGES: "481",
  ERR_CHANOPRIVSNEEDED: "482",
  ERR_NOOPERHOST: "491",
  ERR_UMODEUNKNOWNFLAG: "501",
  ERR_USERSDONTMATCH: "502",
  RPL_LOGGEDIN: "900",
  RPL_LOGGEDOUT: "901",
  ERR_NICKLOCKED: "902",
  RPL_SASLSUCCESS: "903",
  ERR_SASLFAIL: "904",
  ERR_SASLTOOLONG: "905",
  ERR_SASLABORTED: "906",
  ERR_SASLALREADY: "907",
  RPL_SASLMECHS: "908",
} as const;

/** The name of a numeric in {@linkcode NUMERICS}. */
export type NumericName = keyof typeof NUMERICS;

/** Who a numeric reply is from and for. */
export interface ReplyTarget {
  /** The server's name, the source of the reply. */
  server: string;
  /** The client's nick; `""` before it has one, sent as `*`. */
  nick: string;
}

/**
 * A numeric reply: `:server <code> <nick> <params…>`.
 *
 * @example
 * ```ts
 * import { formatMessage, numericReply } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * const to = { server: "charla", nick: "" };
 * assert.equal(
 *   formatMessage(numericReply(to, "ERR_NOTREGISTERED", ["You have not registered"])),
 *   ":charla 451 * :You have not registered",
 * );
 * ```
 */
export function numericReply(
  to: ReplyTarget,
  name: NumericName,
  params: readonly string[] = [],
): IrcMessage {
  return {
    tags: new Map(),
    source: to.server,
    command: NUMERICS[name],
    // Before registration the client has no nick yet: "*" stands for it.
    params: [to.nick === "" ? "*" : to.nick, ...params],
  };
}

/** Fields of an IRCv3 standard reply (`FAIL`, `WARN`, `NOTE`). */
export interface StandardReply {
  /** How serious: FAIL (it did not happen), WARN, NOTE. */
  type: "FAIL" | "WARN" | "NOTE";
  /** The command it is about, or `*` for none. */
  command: string;
  /** The machine-readable code, such as `INVALID_UTF8`. */
  code: string;
  /** Extra parameters before the description (may be none). */
  context?: readonly string[];
  /** A sentence for people. */
  description: string;
}

/**
 * An IRCv3 standard reply: `:server FAIL <command> <code> [context…] :<description>`.
 *
 * @example
 * ```ts
 * import { formatMessage, standardReply } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * const reply = standardReply("charla", {
 *   type: "FAIL", command: "PRIVMSG", code: "INVALID_UTF8", description: "Message is not UTF-8",
 * });
 * assert.equal(formatMessage(reply), ":charla FAIL PRIVMSG INVALID_UTF8 :Message is not UTF-8");
 * ```
 */
export function standardReply(server: string, reply: StandardReply): IrcMessage {
  return {
    tags: new Map(),
    source: server,
    command: reply.type,
    params: [reply.command, reply.code, ...(reply.context ?? []), reply.description],
  };
}

/**
 * The value of the IRCv3 `time` tag (server-time) for a moment given in
 * milliseconds since the epoch: UTC, with milliseconds, ending in `Z`.
 *
 * @example
 * ```ts
 * import { serverTime } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(serverTime(Date.UTC(2026, 10, 28, 12)), "2026-11-28T12:00:00.000Z");
 * ```
 */
export function serverTime(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The ISUPPORT tokens any charla IRC port declares. Nicks and rooms are ASCII
 * names of up to 32 characters (CHANNELLEN counts the `#`), channels start with
 * `#` only, and names compare ignoring ASCII case.
 */
export const BASE_ISUPPORT: Readonly<Record<string, string | true>> = Object.freeze({
  CASEMAPPING,
  CHANTYPES: "#",
  NICKLEN: String(MAX_NAME_LENGTH),
  CHANNELLEN: String(MAX_NAME_LENGTH + 1),
});

/** Options of {@linkcode isupportLines}: who the lines are from and for, and how many tokens a line holds. */
export interface IsupportOptions extends ReplyTarget {
  /**
   * Most tokens on one line. 13 keeps a line within the 15 parameters of RFC 1459
   * (the nick, 13 tokens, the trailing text).
   * @default {13}
   */
  maxTokens?: number;
}

const ISUPPORT_TEXT = "are supported by this server";

/**
 * Builds the 005 RPL_ISUPPORT lines for a set of tokens (`true`: a token
 * without a value), as many lines as needed so each holds at most `maxTokens`
 * tokens and fits {@linkcode MAX_LINE_BYTES} with CR LF. Values are escaped as
 * ISUPPORT says (`\x20` for a space, `\x5C` for `\`, `\x3D` for `=`).
 *
 * @throws {RangeError} for a token name that is not letters and digits, or a
 * token too long for a line of its own.
 *
 * @example
 * ```ts
 * import { BASE_ISUPPORT, formatMessage, isupportLines } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * const [line] = isupportLines(BASE_ISUPPORT, { server: "charla", nick: "ana" });
 * assert.equal(
 *   formatMessage(line),
 *   ":charla 005 ana CASEMAPPING=ascii CHANTYPES=# NICKLEN=32 CHANNELLEN=33 :are supported by this server",
 * );
 * ```
 */
export function isupportLines(
  tokens: Readonly<Record<string, string | true>>,
  options: IsupportOptions,
): IrcMessage[] {
  const maxTokens = options.maxTokens ?? 13;
  const nick = options.nick === "" ? "*" : options.nick;
  const fixed = utf8Length(`:${options.server} 005 ${nick} :${ISUPPORT_TEXT}\r\n`);
  const lines: IrcMessage[] = [];
  let current: string[] = [];
  let bytes = fixed;
  for (const [key, value] of Object.entries(tokens)) {
    if (!/^[A-Z0-9]+$/i.test(key)) throw new RangeError(`Invalid ISUPPORT token "${key}"`);
    const token = value === true || value === "" ? key : `${key}=${escapeIsupportValue(value)}`;
    const length = utf8Length(token) + 1;
    if (fixed + length > MAX_LINE_BYTES) {
      throw new RangeError(`ISUPPORT token "${key}" is too long for one line`);
    }
    if (current.length === maxTokens || bytes + length > MAX_LINE_BYTES) {
      lines.push(numericReply(options, "RPL_ISUPPORT", [...current, ISUPPORT_TEXT]));
      current = [];
      bytes = fixed;
    }
    current.push(token);
    bytes += length;
  }
  if (current.length > 0) {
    lines.push(numericReply(options, "RPL_ISUPPORT", [...current, ISUPPORT_TEXT]));
  }
  return lines;
}

function escapeIsupportValue(value: string): string {
  return value.replace(/[ \\=]/g, (c) => c === " " ? "\\x20" : c === "\\" ? "\\x5C" : "\\x3D");
}

/** The parts of a `nick!user@host` source. */
export interface SourceParts {
  /** The nick, or the whole source for a server name. */
  nick: string;
  /** The user name after `!`, if any. */
  user: string | null;
  /** The host after `@`, if any. */
  host: string | null;
}

/**
 * Splits a source into nick, user and host (`nick!user@host`; a server name
 * is all nick).
 *
 * @example
 * ```ts
 * import { parseSource } from "./irc_message.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseSource("ana!a@charla"), { nick: "ana", user: "a", host: "charla" });
 * ```
 */
export function parseSource(source: string): SourceParts {
  const at = source.indexOf("@");
  const beforeHost = at < 0 ? source : source.slice(0, at);
  const bang = beforeHost.indexOf("!");
  return {
    nick: bang < 0 ? beforeHost : beforeHost.slice(0, bang),
    user: bang < 0 ? null : beforeHost.slice(bang + 1),
    host: at < 0 ? null : source.slice(at + 1),
  };
}

/** Encodes a formatted message as the bytes to send, CR LF included. */
export function encodeLine(message: IrcMessageInit): Uint8Array {
  return encoder.encode(formatMessage(message) + "\r\n");
}
