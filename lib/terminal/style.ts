/**
 * Colours for a chat on a terminal: a colour per name that people present
 * rarely share, notices dimmed, errors in red, your name highlighted where
 * others mention it, time stamps dim. Pure: strings in, strings with SGR
 * sequences out. The text styled here was sanitized first (see text.ts), so the
 * only escape sequences in the result are the ones added here.
 *
 * @module
 */

import type { ChatEvent } from "../core/messages.ts";

const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
const BOLD = "\x1b[1m";
const RED = "\x1b[31m";
// Reverse video on and off: "off" leaves the line's other attributes (bold, colour) as they were.
const REVERSE = "\x1b[7m";
const NO_REVERSE = "\x1b[27m";

/**
 * Name colours on a 16-colour terminal, as SGR foreground codes. Red (31, 91) is
 * kept for errors; blue (34) comes last as it reads badly on black. The
 * terminal's theme decides the real colours, so nothing better can be promised.
 */
export const PALETTE_16: readonly number[] = [32, 33, 35, 36, 92, 93, 94, 95, 96, 34];

/**
 * Name colours on a 256-colour terminal, as xterm-256 indexes (the 6x6x6 cube,
 * whose levels a terminal's theme does not change). Chosen from the cube so
 * that each has a contrast ratio of at least 3:1 (WCAG) against both black and
 * white, so it reads on dark and light backgrounds alike; with no reds (hue
 * under 25° or over 320°), which are kept for errors; no greys, which look like
 * dim notices; and, picking the most distinct next each time, at least 18 apart
 * (CIELAB ΔE) from one another. Ordered by hue.
 */
export const PALETTE_256: readonly number[] = [
  166, // dark orange    #d75f00
  94, //  brown          #875f00
  136, // dark goldenrod #af8700
  58, //  olive          #5f5f00
  64, //  moss green     #5f8700
  28, //  green          #008700
  29, //  sea green      #00875f
  30, //  teal           #008787
  31, //  deep sky blue  #0087af
  25, //  dark blue      #005faf
  33, //  azure          #0087ff
  62, //  slate blue     #5f5fd7
  63, //  royal blue     #5f5fff
  104, // lavender       #8787d7
  93, //  violet         #8700ff
  92, //  purple         #8700d7
  134, // medium orchid  #af5fd7
  171, // orchid         #d75fff
  165, // electric purple #d700ff
  127, // magenta        #af00af
  200, // hot magenta    #ff00d7
  126, // plum           #af0087
  199, // deep pink      #ff00af
  169, // pink orchid    #d75faf
];

/** How many colours a terminal shows: 16 (any terminal) or 256. */
export type ColorDepth = 16 | 256;

/**
 * How many colours a terminal shows, from its environment: 256 when `COLORTERM`
 * says truecolor or 24bit, or `TERM` names a 256-colour, direct-colour or
 * truecolor terminal (`xterm-256color`, `tmux-256color`, `xterm-direct`); else 16,
 * which every colour terminal has.
 *
 * @example
 * ```ts
 * import { colorDepth } from "./style.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(colorDepth({ TERM: "xterm-256color" }), 256);
 * assert.equal(colorDepth({ TERM: "xterm", COLORTERM: "truecolor" }), 256);
 * assert.equal(colorDepth({ TERM: "linux" }), 16);
 * assert.equal(colorDepth({}), 16);
 * ```
 */
export function colorDepth(env: { TERM?: string; COLORTERM?: string }): ColorDepth {
  if (/^(truecolor|24bit)$/i.test(env.COLORTERM ?? "")) return 256;
  return /256col|direct|truecolor/i.test(env.TERM ?? "") ? 256 : 16;
}

/**
 * {@linkcode colorDepth} of this process's terminal. Reading `TERM` and
 * `COLORTERM` needs `--allow-env=TERM,COLORTERM`; without it (the permission is
 * queried, never prompted for) the answer is 16.
 */
export function terminalColorDepth(): ColorDepth {
  const env: { TERM?: string; COLORTERM?: string } = {};
  for (const variable of ["TERM", "COLORTERM"] as const) {
    if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") return 16;
    env[variable] = Deno.env.get(variable);
  }
  return colorDepth(env);
}

/** FNV-1a of the name in lowercase: cheap, and spreads similar names apart. */
function nameHash(name: string): number {
  let hash = 0x811c9dc5;
  for (const c of name.toLowerCase()) {
    hash ^= c.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The SGR parameters for palette entry `index`. */
function sgr(colors: ColorDepth, index: number): string {
  return colors === 256 ? `38;5;${PALETTE_256[index]}` : String(PALETTE_16[index]);
}

/**
 * The colour a name gets from its hash alone, as SGR parameters (`"36"`,
 * `"38;5;166"`): the same name, in any case, always gets the same one. Two
 * names may share it; {@linkcode NamePalette} avoids that among people present.
 *
 * @example
 * ```ts
 * import { nameColour } from "./style.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(nameColour("Ana"), nameColour("ana"));
 * assert.match(nameColour("ana", 256), /^38;5;\d+$/);
 * ```
 */
export function nameColour(name: string, colors: ColorDepth = 16): string {
  const size = colors === 256 ? PALETTE_256.length : PALETTE_16.length;
  return sgr(colors, nameHash(name) % size);
}

/** Options for {@linkcode NamePalette}. */
export interface NamePaletteOptions {
  /** How many colours the terminal shows (see {@linkcode colorDepth}). @default {16} */
  colors?: ColorDepth;
  /**
   * Most names remembered. A client does not always see people leave (a server
   * that is not a room says nothing), so past this the name seen least recently
   * is forgotten, and its colour freed.
   * @default {1000}
   */
  maxNames?: number;
}

/**
 * Colours for the people present, so that they rarely share one. A name gets its
 * hash colour ({@linkcode nameColour}) unless another present name holds it, then
 * the next free one in the palette; it keeps that colour while it stays (and
 * across a rename), and frees it when it leaves. Only when more people are
 * present than the palette has colours (24 of 256, 10 of 16) do some share.
 *
 * Names are compared ignoring case, as the server compares them.
 *
 * @example
 * ```ts
 * import { NamePalette, nameColour } from "./style.ts";
 * import assert from "node:assert/strict";
 *
 * const palette = new NamePalette({ colors: 256 });
 * const colours = ["ana", "bea", "carlos", "dani"].map((name) => palette.colour(name));
 * assert.equal(new Set(colours).size, 4);
 * assert.equal(palette.colour("ana"), nameColour("ana", 256)); // the first to come: its own
 * palette.leave("bea");
 * assert.deepEqual(palette.present(), ["carlos", "dani", "ana"]); // least recently seen first
 * ```
 */
export class NamePalette {
  /** How many colours the terminal shows. */
  readonly colors: ColorDepth;
  readonly #size: number;
  readonly #maxNames: number;
  /**
   * Present names by lowercase key: the name as last seen, and its palette index.
   * A Map keeps insertion order, and a name seen again is moved to the end, so
   * the first entry is the one seen least recently.
   */
  #names = new Map<string, { name: string; index: number }>();
  /** How many present names hold each palette index. */
  #holders: number[];

  /** A palette; see {@linkcode NamePaletteOptions}. */
  constructor(options: NamePaletteOptions = {}) {
    this.colors = options.colors ?? 16;
    this.#size = this.colors === 256 ? PALETTE_256.length : PALETTE_16.length;
    this.#maxNames = options.maxNames ?? 1000;
    this.#holders = new Array(this.#size).fill(0);
  }

  /** The colour of `name` as SGR parameters; a name not yet present joins. */
  colour(name: string): string {
    const key = name.toLowerCase();
    const entry = this.#names.get(key);
    if (entry !== undefined) {
      // Seen again: the most recent now, and shown as last written.
      this.#names.delete(key);
      this.#names.set(key, { name, index: entry.index });
      return sgr(this.colors, entry.index);
    }
    if (this.#names.size >= this.#maxNames) this.leave(this.#names.keys().next().value!);
    const index = this.#pick(nameHash(name) % this.#size);
    this.#names.set(key, { name, index });
    this.#holders[index]++;
    return sgr(this.colors, index);
  }

  /** `name` is present: it gets its colour now, as in {@linkcode colour}. */
  join(name: string): void {
    this.colour(name);
  }

  /** `name` left: its colour is free for the next to come. */
  leave(name: string): void {
    const key = name.toLowerCase();
    const entry = this.#names.get(key);
    if (entry === undefined) return;
    this.#names.delete(key);
    this.#holders[entry.index]--;
  }

  /** `from` is now called `to`, and keeps its colour (a new name if `from` was unknown). */
  rename(from: string, to: string): void {
    const entry = this.#names.get(from.toLowerCase());
    if (entry === undefined) return this.join(to);
    this.#names.delete(from.toLowerCase());
    const taken = this.#names.get(to.toLowerCase());
    if (taken !== undefined) this.#holders[taken.index]--;
    this.#names.set(to.toLowerCase(), { name: to, index: entry.index });
  }

  /** The names present, least recently seen first: what Tab can complete. */
  present(): string[] {
    return Array.from(this.#names.values(), (entry) => entry.name);
  }

  /** `preferred` when nobody holds it, else the next free index, else (all taken) `preferred`. */
  #pick(preferred: number): number {
    for (let step = 0; step < this.#size; step++) {
      const index = (preferred + step) % this.#size;
      if (this.#holders[index] === 0) return index;
    }
    return preferred;
  }
}

/**
 * Whether `text` mentions `name` as a whole word, in any case: `ana` is in
 * "hola Ana!" but not in "banana" or "ana_b" (characters a name can hold, letters
 * and digits, `_` and `-`, join a word).
 *
 * @example
 * ```ts
 * import { mentions } from "./style.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(mentions("hola ANA, ¿qué tal?", "ana"), true);
 * assert.equal(mentions("una banana", "ana"), false);
 * ```
 */
export function mentions(text: string, name: string): boolean {
  return name !== "" && mentionPattern(name).test(text);
}

/** A whole-word, any-case match of `name`; global, for replace(). */
function mentionPattern(name: string): RegExp {
  // "-" needs no escape outside a class, and in Unicode mode must not have one.
  const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  return new RegExp(`(?<![\\p{L}\\p{N}_-])${escaped}(?![\\p{L}\\p{N}_-])`, "giu");
}

/**
 * `text` with each whole-word mention of `name` (see {@linkcode mentions}) in
 * reverse video; unchanged when there is none.
 *
 * @example
 * ```ts
 * import { highlightMentions } from "./style.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(highlightMentions("hi Ana", "ana"), "hi \x1b[7mAna\x1b[27m");
 * ```
 */
export function highlightMentions(text: string, name: string): string {
  if (name === "") return text;
  return text.replace(mentionPattern(name), (word) => `${REVERSE}${word}${NO_REVERSE}`);
}

/**
 * The time stamp before a line, `HH:MM ` in local time, dim when `color` is set:
 * what a `--timestamps` flag would show.
 *
 * @example
 * ```ts
 * import { timestamp } from "./style.ts";
 * import assert from "node:assert/strict";
 *
 * const at = new Date(2026, 0, 2, 9, 5, 59);
 * assert.equal(timestamp(at, false), "09:05 ");
 * assert.equal(timestamp(at), "\x1b[2m09:05\x1b[0m ");
 * ```
 */
export function timestamp(date: Date, color = true): string {
  const hhmm = `${String(date.getHours()).padStart(2, "0")}:${
    String(date.getMinutes()).padStart(2, "0")
  }`;
  return color ? `${DIM}${hhmm}${RESET} ` : `${hhmm} `;
}

/** Turns colour on or off for everything a {@linkcode Styler} makes, and picks the palette. */
export interface StyleOptions {
  /**
   * Whether to colour at all: false when `NO_COLOR` is set or the output is not
   * a terminal.
   * @default {true}
   */
  color?: boolean;
  /** How many colours the terminal shows (see {@linkcode terminalColorDepth}). @default {16} */
  colors?: ColorDepth;
  /**
   * Whose colour is whose. By default a palette of the Styler's own, kept up to
   * date through {@linkcode Styler.follow}.
   */
  palette?: NamePalette;
}

/**
 * Styles the lines charla shows: what a client receives, and the operator's log.
 * It is told what happens ({@linkcode Styler.follow}) so that its
 * {@linkcode NamePalette} keeps the names present apart; it never reads a line
 * to find out.
 *
 * @example
 * ```ts
 * import { Styler } from "./style.ts";
 * import assert from "node:assert/strict";
 *
 * const plain = new Styler({ color: false });
 * assert.equal(plain.said("message", "ana", "hola"), "<ana> hola");
 * const styled = new Styler();
 * assert.equal(styled.error("* error: no such name"), "\x1b[31m* error: no such name\x1b[0m");
 * styled.follow({ type: "join", room: "#lobby", who: { id: 2, name: "bea" } });
 * assert.deepEqual(styled.palette.present(), ["bea"]);
 * ```
 */
export class Styler {
  /** Whether colours are used. */
  readonly color: boolean;
  /** The colours of the names present, and who they are. */
  readonly palette: NamePalette;

  /** A styler; see {@linkcode StyleOptions}. */
  constructor(options: StyleOptions = {}) {
    this.color = options.color ?? true;
    this.palette = options.palette ?? new NamePalette({ colors: options.colors ?? 16 });
  }

  /** A name in its colour. */
  name(name: string, bold = false): string {
    if (!this.color) return name;
    return `${bold ? BOLD : ""}\x1b[${this.palette.colour(name)}m${name}${RESET}`;
  }

  /** A line the user typed and sent, shown once: `<name> text` in bold, commands dim. */
  sent(line: string, name: string): string {
    if (line.startsWith("/") && !line.startsWith("//")) {
      return this.color ? `${DIM}${line}${RESET}` : line;
    }
    const text = line.startsWith("//") ? line.slice(1) : line;
    return this.color ? `<${this.name(name, true)}> ${BOLD}${text}${RESET}` : `<${name}> ${text}`;
  }

  /** The client's own status messages (connected, closed, reconnecting). */
  status(text: string): string {
    return this.color ? `${DIM}${text}${RESET}` : text;
  }

  /**
   * A line said in a room, `<name> text` (or `** name text` for an action):
   * the name in its colour, your own lines bold, mentions of your name (`me`)
   * in what others say highlighted.
   */
  said(
    kind: "message" | "action",
    name: string,
    text: string,
    me?: { name: string; mine: boolean },
  ): string {
    const plain = kind === "action" ? `** ${name} ${text}` : `<${name}> ${text}`;
    if (!this.color) return plain;
    const mine = me?.mine ?? false;
    const who = this.name(name, mine);
    const body = mine
      ? `${BOLD}${text}${RESET}`
      : me === undefined
      ? text
      : highlightMentions(text, me.name);
    return kind === "action" ? `** ${who} ${body}` : `<${who}> ${body}`;
  }

  /** A private message line (to or from `name`): the marker bold, the name in its colour. */
  privately(line: string, name: string): string {
    if (!this.color) return line;
    const at = line.indexOf(`*${name}*`);
    if (at < 0) return line;
    return `${line.slice(0, at)}${BOLD}*${RESET}${this.name(name, true)}${BOLD}*${RESET}${
      line.slice(at + name.length + 2)
    }`;
  }

  /** The operator's words. */
  operator(line: string): string {
    return this.color ? `${BOLD}${line}${RESET}` : line;
  }

  /** A notice from the server (or a line of history): dim. */
  notice(line: string): string {
    return this.color ? `${DIM}${line}${RESET}` : line;
  }

  /** Something refused or broken: red. */
  error(line: string): string {
    return this.color ? `${RED}${line}${RESET}` : line;
  }

  /** A line typed while disconnected: dim, and marked as waiting to be sent. */
  queued(line: string, name: string): string {
    const text = line.startsWith("//") ? line.slice(1) : line;
    const shown = line.startsWith("/") && !line.startsWith("//") ? line : `<${name}> ${text}`;
    return this.color ? `${DIM}${shown} (queued)${RESET}` : `${shown} (queued)`;
  }

  /** A time stamp before a log line: dim. */
  stamp(text: string): string {
    return this.color && text !== "" ? `${DIM}${text}${RESET}` : text;
  }

  /**
   * Keeps the palette's idea of who is present in step with what happens, so
   * people present rarely share a colour (see {@linkcode NamePalette}).
   */
  follow(event: ChatEvent): void {
    switch (event.type) {
      case "join":
        return this.palette.join(event.who.name);
      case "part":
      case "quit":
        return this.palette.leave(event.who.name);
      case "nick":
        return this.palette.rename(event.from, event.who.name);
      case "renamed":
        return this.palette.rename(event.from, event.you.name);
      case "welcome":
        return this.palette.join(event.you.name);
      case "joined":
      case "who":
        for (const member of event.members) this.palette.join(member.name);
        return;
    }
  }
}
