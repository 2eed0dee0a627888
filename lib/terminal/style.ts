/**
 * Colours for a chat on a terminal: a stable colour per name, notices dimmed,
 * errors in red, time stamps dim. Pure: strings in, strings with SGR sequences
 * out. The text styled here was sanitized first (see text.ts), so the only
 * escape sequences in the result are the ones added here.
 *
 * @module
 */

const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
const BOLD = "\x1b[1m";
const RED = "\x1b[31m";
/** Black on yellow: a line that mentions you. */
const MENTION = "\x1b[30;43m";

/** Colours for names: red is kept for errors, and dark blue reads badly on black. */
const NAME_COLOURS = [32, 33, 35, 36, 92, 93, 94, 95, 96, 34];

/** Turns colour on or off for everything a {@linkcode Styler} makes. */
export interface StyleOptions {
  /**
   * Whether to colour at all: false when `NO_COLOR` is set or the output is not
   * a terminal.
   * @default {true}
   */
  color?: boolean;
}

/**
 * The colour of a name: the same name (in any case) always gets the same one.
 *
 * @example
 * ```ts
 * import { nameColour } from "./style.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(nameColour("Ana"), nameColour("ana"));
 * ```
 */
export function nameColour(name: string): number {
  // FNV-1a: cheap, and spreads similar names over the palette.
  let hash = 0x811c9dc5;
  for (const c of name.toLowerCase()) {
    hash ^= c.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return NAME_COLOURS[hash % NAME_COLOURS.length];
}

/**
 * Styles the lines charla shows: what a client receives, and the operator's log.
 *
 * @example
 * ```ts
 * import { Styler } from "./style.ts";
 * import assert from "node:assert/strict";
 *
 * const plain = new Styler({ color: false });
 * assert.equal(plain.received("<ana> hola"), "<ana> hola");
 * const styled = new Styler();
 * assert.equal(styled.received("* error: no such name"), "\x1b[31m* error: no such name\x1b[0m");
 * ```
 */
export class Styler {
  /** Whether colours are used. */
  readonly color: boolean;

  /** A styler; see {@linkcode StyleOptions}. */
  constructor(options: StyleOptions = {}) {
    this.color = options.color ?? true;
  }

  /** A name in its colour. */
  name(name: string, bold = false): string {
    if (!this.color) return name;
    return `${bold ? BOLD : ""}\x1b[${nameColour(name)}m${name}${RESET}`;
  }

  /** A line a client received: notices dim, errors red, senders in their colour. */
  received(line: string): string {
    if (!this.color) return line;
    if (line.startsWith("* error:")) return `${RED}${line}${RESET}`;
    if (line.startsWith("* ")) return `${DIM}${line}${RESET}`;
    let m = /^<([^>\s]+)> /.exec(line);
    if (m !== null) return `<${this.name(m[1])}> ${line.slice(m[0].length)}`;
    m = /^\*([^*\s]+)\* /.exec(line);
    if (m !== null) {
      return `${BOLD}*${RESET}${this.name(m[1], true)}${BOLD}*${RESET} ${line.slice(m[0].length)}`;
    }
    m = /^-> \*([^*\s]+)\* /.exec(line);
    if (m !== null) {
      return `${DIM}-> *${RESET}${this.name(m[1])}${DIM}*${RESET} ${line.slice(m[0].length)}`;
    }
    return line;
  }

  /** A line the user typed and sent, shown once: `<name> text` in bold, commands dim. */
  sent(line: string, name: string): string {
    if (line.startsWith("/") && !line.startsWith("//")) {
      return this.color ? `${DIM}${line}${RESET}` : line;
    }
    const text = line.startsWith("//") ? line.slice(1) : line;
    return this.color ? `<${this.name(name, true)}> ${BOLD}${text}${RESET}` : `<${name}> ${text}`;
  }

  /**
   * A line said in a room, `<name> text` (or `** name text` for an action):
   * the name in its colour, your own lines bold, lines that mention you
   * highlighted.
   */
  said(
    kind: "message" | "action",
    name: string,
    text: string,
    how: { mine?: boolean; mention?: boolean } = {},
  ): string {
    const plain = kind === "action" ? `** ${name} ${text}` : `<${name}> ${text}`;
    if (!this.color) return plain;
    const who = this.name(name, how.mine);
    const body = how.mine
      ? `${BOLD}${text}${RESET}`
      : how.mention
      ? `${MENTION}${text}${RESET}`
      : text;
    return kind === "action" ? `** ${who} ${body}` : `<${who}> ${body}`;
  }

  /** A private message (to or from `name`): in that person's colour. */
  privately(line: string, name: string): string {
    return this.color ? `\x1b[${nameColour(name)}m${line}${RESET}` : line;
  }

  /** The operator's words to everyone. */
  operator(line: string): string {
    return this.color ? `${BOLD}${line}${RESET}` : line;
  }

  /** A notice from the server (or a history line): dim. */
  notice(line: string): string {
    return this.color ? `${DIM}${line}${RESET}` : line;
  }

  /** Something refused: red. */
  error(line: string): string {
    return this.color ? `${RED}${line}${RESET}` : line;
  }

  /** A line typed while disconnected: dim, marked as waiting to be sent. */
  queued(line: string, name: string): string {
    const text = line.startsWith("//") ? line.slice(1) : line;
    const shown = line.startsWith("/") && !line.startsWith("//") ? line : `<${name}> ${text}`;
    return this.color ? `${DIM}${shown} (queued)${RESET}` : `${shown} (queued)`;
  }

  /** The client's own status messages (connected, closed, reconnecting). */
  status(text: string): string {
    return this.color ? `${DIM}${text}${RESET}` : text;
  }

  /** A line of the operator's log: time dim, names coloured, notices dim, problems red. */
  log(line: string): string {
    if (!this.color) return line;
    const time = /^\d\d:\d\d:\d\d /.exec(line)?.[0] ?? "";
    const rest = line.slice(time.length);
    const stamp = time === "" ? "" : `${DIM}${time}${RESET}`;
    if (rest.startsWith("! ") || rest.startsWith("error:")) return `${stamp}${RED}${rest}${RESET}`;
    if (rest.startsWith("* ")) return `${stamp}${DIM}${rest}${RESET}`;
    const m = /^\[([^\]]+)\] /.exec(rest);
    if (m === null) return stamp + rest;
    // "[#1 ana]", "[server]", "[#1 ana -> #2 bea]": colour each name.
    const who = m[1].replace(
      /(#\d+ )?([^\s\]]+)/g,
      (whole, id: string | undefined, name: string) =>
        name === "->" ? whole : `${id ?? ""}${this.name(name)}`,
    );
    return `${stamp}[${who}] ${rest.slice(m[0].length)}`;
  }
}
