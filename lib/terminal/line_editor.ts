/**
 * A terminal line editor without I/O: raw key bytes in, screen writes and events out.
 *
 * The console reads stdin in raw mode, hands the bytes to {@linkcode LineEditor}'s
 * `feed()` and writes what comes back to stdout. Chat lines that arrive while the
 * user types go through `printAbove()`, which prints them above the prompt and
 * redraws the half-typed line, so a message never tears it apart (as in antirez's
 * smallchat client). Because the editor is pure, every screen write can be tested
 * as a string.
 *
 * The file reads top to bottom as: a key decoder (bytes to keys), a buffer model
 * (text, cursor, history), a renderer (where things land on the terminal's rows,
 * and how to move there), and the editor that ties them together.
 *
 * @module
 */

const CSI = "\x1b[";
const CLEAR_BELOW = `${CSI}J`;

// ---------------------------------------------------------------------------
// Key decoder: raw bytes to keys

/** An editing action, decoded from a control byte or an escape sequence. */
type Action =
  | "left"
  | "right"
  | "home"
  | "end"
  | "up"
  | "down"
  | "backspace"
  | "delete"
  | "killToStart"
  | "killWord"
  | "killToEnd"
  | "redraw"
  | "enter"
  | "interrupt"
  | "ctrlD"
  | "complete";

/** One decoded key: an action, or a run of typed text to insert. */
type Key = Action | { text: string };

const CONTROL_KEYS = new Map<number, Action>([
  [0x01, "home"], // Ctrl-A
  [0x03, "interrupt"], // Ctrl-C
  [0x04, "ctrlD"], // end of input, or Delete: which one depends on the line
  [0x05, "end"], // Ctrl-E
  [0x08, "backspace"], // Ctrl-H, what some terminals send for Backspace
  [0x09, "complete"], // Tab
  [0x0b, "killToEnd"], // Ctrl-K
  [0x0c, "redraw"], // Ctrl-L
  [0x15, "killToStart"], // Ctrl-U
  [0x17, "killWord"], // Ctrl-W
  [0x7f, "backspace"], // DEL, what most terminals send for Backspace
]);

// Keyed by parameters + final byte. Terminals disagree on Home and End (xterm
// sends "H"/"F", the Linux console "1~"/"4~", rxvt "7~"/"8~"), hence the aliases.
const CSI_KEYS = new Map<string, Action>([
  ["A", "up"],
  ["B", "down"],
  ["C", "right"],
  ["D", "left"],
  ["H", "home"],
  ["F", "end"],
  ["1~", "home"],
  ["7~", "home"],
  ["4~", "end"],
  ["8~", "end"],
  ["3~", "delete"],
]);

// SS3 (ESC O x) is what arrows and Home/End send in "application cursor keys" mode.
const SS3_KEYS = new Map<string, Action>([
  ["A", "up"],
  ["B", "down"],
  ["C", "right"],
  ["D", "left"],
  ["H", "home"],
  ["F", "end"],
]);

const PASTE_START = "200~";
const PASTE_END = "201~";

/**
 * Longest unfinished escape sequence kept while waiting for its final byte. Real
 * keys send at most a dozen bytes; anything longer is garbage, dropped so that the
 * pending bytes stay bounded.
 */
const MAX_SEQUENCE = 32;

const utf8 = new TextDecoder();

/** Bytes in the UTF-8 character that starts with `lead`; 1 for a byte that cannot start one. */
function utf8Length(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 1;
}

/**
 * Where text in `bytes[start..end)` must stop so that a character cut by the
 * chunk's end waits for the rest.
 */
function completeUtf8End(bytes: Uint8Array, start: number, end: number): number {
  // A character has at most 4 bytes, so a cut one has its lead among the last 3.
  for (let i = end - 1; i >= Math.max(start, end - 3); i--) {
    const byte = bytes[i];
    if (byte < 0x80) return end;
    if (byte >= 0xc0) return i + utf8Length(byte) > end ? i : end;
  }
  return end;
}

/** Turns raw terminal bytes into keys; a sequence cut by a chunk's end waits for the next. */
class KeyDecoder {
  /** The start of an escape sequence or UTF-8 character that the last chunk cut short. */
  #pending = new Uint8Array(0);
  /** Inside a bracketed paste every byte is text: a pasted Ctrl-C must not interrupt. */
  #pasting = false;
  /** The last byte was CR, so an LF right after it ends the same line (CRLF counts once). */
  #afterCr = false;

  decode(chunk: Uint8Array): Key[] {
    const bytes = new Uint8Array(this.#pending.length + chunk.length);
    bytes.set(this.#pending);
    bytes.set(chunk, this.#pending.length);
    const keys: Key[] = [];
    let i = 0;
    while (i < bytes.length) {
      const byte = bytes[i];
      const afterCr = this.#afterCr;
      this.#afterCr = false;
      // Where the next key starts, or -1 when the bytes end in the middle of this one.
      let next: number;
      if (byte === 0x1b) next = this.#escape(bytes, i, keys);
      else if (byte < 0x20 || byte === 0x7f) {
        this.#control(byte, afterCr, keys);
        next = i + 1;
      } else next = this.#text(bytes, i, keys);
      if (next < 0) break;
      i = next;
    }
    this.#pending = bytes.slice(i);
    return keys;
  }

  #control(byte: number, afterCr: boolean, keys: Key[]): void {
    if (byte === 0x0d) {
      keys.push("enter");
      this.#afterCr = true;
    } else if (byte === 0x0a) {
      if (!afterCr) keys.push("enter");
    } else if (this.#pasting) {
      // Pasted tabs separate words; other pasted controls are not keys the user pressed.
      if (byte === 0x09) keys.push({ text: " " });
    } else {
      const action = CONTROL_KEYS.get(byte);
      if (action) keys.push(action);
    }
  }

  #escape(bytes: Uint8Array, start: number, keys: Key[]): number {
    // A lone ESC at the end may be the start of a sequence split across reads.
    if (start + 1 >= bytes.length) return -1;
    const second = bytes[start + 1];
    if (second === 0x5b) return this.#csi(bytes, start, keys);
    if (second === 0x4f) { // "O": SS3, one more byte names the key
      if (start + 2 >= bytes.length) return -1;
      this.#action(SS3_KEYS.get(String.fromCharCode(bytes[start + 2])), keys);
      return start + 3;
    }
    // ESC ESC: the second may begin a real sequence (some terminals send Alt+arrow so).
    if (second === 0x1b) return start + 1;
    // Alt+key arrives as ESC and the key: swallow the whole (possibly multi-byte) key.
    const end = start + 1 + utf8Length(second);
    return end > bytes.length ? -1 : end;
  }

  #csi(bytes: Uint8Array, start: number, keys: Key[]): number {
    // ECMA-48: parameter bytes 0x30-0x3F and intermediate bytes 0x20-0x2F, then a
    // final byte 0x40-0x7E.
    let i = start + 2;
    while (i < bytes.length && bytes[i] >= 0x20 && bytes[i] <= 0x3f) i++;
    if (i === bytes.length) return i - start > MAX_SEQUENCE ? i : -1;
    const final = bytes[i];
    // Any other byte breaks the sequence: drop what came so far, decode that byte anew.
    if (final < 0x40 || final > 0x7e) return i;
    const name = String.fromCharCode(...bytes.subarray(start + 2, i + 1));
    if (name === PASTE_START) this.#pasting = true;
    else if (name === PASTE_END) this.#pasting = false;
    else this.#action(CSI_KEYS.get(name), keys);
    return i + 1;
  }

  #action(action: Action | undefined, keys: Key[]): void {
    if (action && !this.#pasting) keys.push(action);
  }

  #text(bytes: Uint8Array, start: number, keys: Key[]): number {
    let end = start;
    while (end < bytes.length && bytes[end] >= 0x20 && bytes[end] !== 0x7f) end++;
    if (end === bytes.length) end = completeUtf8End(bytes, start, end);
    if (end === start) return -1;
    // Invalid UTF-8 becomes U+FFFD; C1 controls (U+0080-U+009F) are dropped because
    // some terminals obey them like ESC sequences.
    const text = utf8.decode(bytes.subarray(start, end)).replace(/\p{Cc}/gu, "");
    if (text) keys.push({ text });
    return end;
  }
}

// ---------------------------------------------------------------------------
// Buffer model: the line being typed, and history

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/**
 * The typed text and the cursor. The cursor only ever sits between graphemes, so
 * no edit can split "é" written as e + U+0301, a flag, or an emoji joined by ZWJ.
 */
class LineBuffer {
  /** The typed text. */
  #text = "";
  /** The graphemes of `#text`, recomputed on every change: lines are short. */
  #parts: string[] = [];
  /** UTF-16 offset where each grapheme starts, plus the text's length at the end. */
  #bounds = [0];
  /** The cursor, as an index into `#bounds`: graphemes before it. */
  #cursor = 0;

  get text(): string {
    return this.#text;
  }

  get parts(): readonly string[] {
    return this.#parts;
  }

  get cursor(): number {
    return this.#cursor;
  }

  /** Whether `offset` falls between two graphemes (so text appended there stands alone). */
  isBoundary(offset: number): boolean {
    return this.#bounds.includes(offset);
  }

  /** Replaces the text, with the cursor at the first boundary at or after `offset`. */
  set(text: string, offset = text.length): void {
    this.#text = text;
    this.#parts = Array.from(graphemes.segment(text), (s) => s.segment);
    let length = 0;
    this.#bounds = [0, ...this.#parts.map((part) => length += part.length)];
    // Typed text can join the grapheme after it (a ZWJ before an emoji): the cursor
    // then goes after the joined grapheme rather than inside it.
    this.#cursor = this.#bounds.findIndex((bound) => bound >= offset);
  }

  insert(text: string): void {
    const at = this.#bounds[this.#cursor];
    this.set(this.#text.slice(0, at) + text + this.#text.slice(at), at + text.length);
  }

  /** Moves the cursor to grapheme `index`, clamped to the line. */
  moveTo(index: number): void {
    this.#cursor = Math.max(0, Math.min(this.#parts.length, index));
  }

  /** Deletes graphemes `[from, to)` and leaves the cursor at `from`. */
  delete(from: number, to: number): void {
    const start = this.#bounds[Math.max(0, from)];
    const end = this.#bounds[Math.min(this.#parts.length, to)];
    this.set(this.#text.slice(0, start) + this.#text.slice(end), start);
  }

  /**
   * The word the cursor ends (from the last space before the cursor up to it; empty
   * after a space), where it starts, and whether only spaces come before it.
   */
  wordAtCursor(): { start: number; word: string; first: boolean } {
    let start = this.#cursor;
    while (start > 0 && !/^\s+$/u.test(this.#parts[start - 1])) start--;
    return {
      start,
      word: this.#parts.slice(start, this.#cursor).join(""),
      first: this.#parts.slice(0, start).every((part) => /^\s+$/u.test(part)),
    };
  }

  /** Where the word before the cursor starts, as readline's unix-word-rubout sees words. */
  wordStart(): number {
    const isSpace = (i: number) => /^\s+$/u.test(this.#parts[i]);
    let i = this.#cursor;
    while (i > 0 && isSpace(i - 1)) i--;
    while (i > 0 && !isSpace(i - 1)) i--;
    return i;
  }
}

/** Sent lines, oldest first, and the walk through them with Up and Down. */
class History {
  /** Submitted lines, oldest first, at most `#size` of them. */
  #entries: string[] = [];
  #size: number;
  /**
   * While walking: a copy of the entries plus the line being typed, holding edits
   * made to each while it was shown, so that leaving an entry and coming back keeps
   * them (as readline does) without rewriting history. Null when not walking.
   */
  #walk: string[] | null = null;
  /** Which entry of `#walk` is shown. */
  #index = 0;

  constructor(size: number) {
    this.#size = size;
  }

  /** Records a submitted line and ends the walk. */
  add(line: string): void {
    this.#walk = null;
    if (line === "" || line === this.#entries.at(-1)) return;
    this.#entries.push(line);
    if (this.#entries.length > this.#size) {
      this.#entries.splice(0, this.#entries.length - this.#size);
    }
  }

  /**
   * The entry `step` away from the one shown (-1 is older), after saving the shown
   * one's edits, `current`; undefined past either end.
   */
  move(current: string, step: -1 | 1): string | undefined {
    if (this.#walk === null) {
      this.#walk = [...this.#entries, current];
      this.#index = this.#entries.length;
    }
    const to = this.#index + step;
    if (to < 0 || to >= this.#walk.length) return undefined;
    this.#walk[this.#index] = current;
    this.#index = to;
    return this.#walk[to];
  }
}

// ---------------------------------------------------------------------------
// Renderer: widths, rows, cursor moves

// CSI sequences (colours among them) and OSC strings take no room on screen.
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?/g;
// Select Graphic Rendition: colours and bold, the only sequences kept from outside.
// deno-lint-ignore no-control-regex
const SGR = /^\x1b\[[0-9;:]*m$/;
// deno-lint-ignore no-control-regex
const SGR_PIECE = /(\x1b\[[0-9;:]*m)/;
// What printAbove() must not pass through: any escape sequence or control but TAB.
// deno-lint-ignore no-control-regex
const UNSAFE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?|[^\P{Cc}\t]/gsu;

// Combining marks, format characters (ZWJ, ZWNJ, variation selectors are Mn),
// controls, and the Hangul vowels and finals that join a leading consonant.
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\p{Cc}\u1160-\u11ff\ud7b0-\ud7ff]/u;
// Emoji drawn as pictures: those shown so by default (flags included, as regional
// indicators are), and text-style pictographs turned into emoji by U+FE0F.
const EMOJI = /^(?:\p{Emoji_Presentation}|\p{Extended_Pictographic}\uFE0F)/u;

/** East Asian Wide and Fullwidth ranges (Unicode's EastAsianWidth.txt) that are not emoji. */
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f], // Hangul Jamo leading consonants
  [0x2e80, 0x303e], // CJK radicals, Kangxi radicals, CJK symbols and punctuation
  [0x3041, 0x33ff], // kana, Bopomofo, Hangul compatibility Jamo, enclosed CJK
  [0x3400, 0x4dbf], // CJK extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa000, 0xa4cf], // Yi
  [0xa960, 0xa97f], // Hangul Jamo extended A
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe10, 0xfe19], // vertical forms
  [0xfe30, 0xfe6f], // CJK compatibility forms, small form variants
  [0xff00, 0xff60], // fullwidth forms
  [0xffe0, 0xffe6], // fullwidth signs
  [0x16fe0, 0x16fe4], // ideographic symbols
  [0x17000, 0x18cff], // Tangut, Khitan
  [0x1b000, 0x1b2ff], // kana supplement and extensions, Nushu
  [0x1f200, 0x1f2ff], // enclosed ideographic supplement
  [0x20000, 0x2fffd], // CJK extensions B and later
  [0x30000, 0x3fffd], // CJK extensions G and later
];

/** Columns one grapheme takes: its first code point decides, except for emoji. */
function graphemeWidth(grapheme: string): number {
  if (ZERO_WIDTH.test(grapheme)) return 0;
  if (EMOJI.test(grapheme)) return 2;
  const code = grapheme.codePointAt(0) ?? 0;
  return WIDE.some(([from, to]) => code >= from && code <= to) ? 2 : 1;
}

/**
 * Columns a string occupies on a terminal: wide East Asian characters (CJK,
 * fullwidth forms) and emoji take 2, combining marks, zero-width joiners,
 * variation selectors and ANSI escape sequences take 0, anything else 1. A
 * grapheme counts once: an emoji sequence joined by ZWJ, a flag, or a letter with
 * combining accents is one character on screen.
 *
 * @example
 * ```ts
 * import { displayWidth } from "./line_editor.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(displayWidth("hola"), 4);
 * assert.equal(displayWidth("你好"), 4);
 * assert.equal(displayWidth("e\u0301"), 1);
 * assert.equal(displayWidth("👨‍👩‍👧"), 2);
 * assert.equal(displayWidth("\x1b[1;31mred\x1b[0m"), 3);
 * ```
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of graphemes.segment(text.replace(ANSI, ""))) {
    width += graphemeWidth(segment);
  }
  return width;
}

/** One thing drawn: a grapheme, or an escape sequence of the prompt (width 0). */
interface Unit {
  text: string;
  width: number;
}

/** A place on screen, counted from the start of the prompt's first row. */
interface Position {
  row: number;
  col: number;
}

/** Where everything lands on screen for one state of the line. */
interface Layout {
  /** What to write, from the start of the prompt's first row, to draw it all. */
  draw: string;
  /** Columns used on each row; a resize needs them to know how rows re-wrap. */
  rows: number[];
  /** Where the cursor is once `draw` is written. */
  end: Position;
  /** Where the cursor belongs. */
  cursor: Position;
}

/**
 * Lays `units` out over rows `columns` wide; the cursor goes before unit `cursorAt`.
 *
 * Rows are broken here with CRLF rather than left to the terminal's autowrap, for
 * three reasons. Terminals agree on where a 2-column character that does not fit
 * goes only when nothing is left to them. When the draw ends in the last column,
 * the terminal sits in its "pending wrap" state, where relative moves differ
 * between terminals; the trailing CRLF puts the cursor, unambiguously, at the start
 * of the next row. And a terminal that reflows on resize keeps hard rows as they
 * are when it grows wider, so the editor can still tell where its rows are.
 */
function layOut(units: readonly Unit[], cursorAt: number, columns: number): Layout {
  let draw = "";
  const rows = [0];
  let col = 0;
  let cursor: Position | undefined;
  const newRow = () => {
    draw += "\r\n";
    rows.push(0);
    col = 0;
  };
  units.forEach((unit, i) => {
    // A unit wider than the whole row goes on a row of its own, however it shows.
    if (col >= columns || (col > 0 && col + unit.width > columns)) newRow();
    if (i === cursorAt) cursor = { row: rows.length - 1, col };
    draw += unit.text;
    col += unit.width;
    rows[rows.length - 1] = col;
  });
  if (col >= columns) newRow();
  const end = { row: rows.length - 1, col };
  return { draw, rows, end, cursor: cursor ?? end };
}

/** The relative moves from one position to another. */
function moveCursor(from: Position, to: Position): string {
  let out = "";
  if (to.row < from.row) out += `${CSI}${from.row - to.row}A`;
  if (to.row > from.row) out += `${CSI}${to.row - from.row}B`;
  if (to.col === from.col) return out;
  if (to.col === 0) return `${out}\r`;
  if (to.col > from.col) return `${out}${CSI}${to.col - from.col}C`;
  return `${out}${CSI}${from.col - to.col}D`;
}

/** `text` as units, one per grapheme. */
function textUnits(text: string): Unit[] {
  return Array.from(
    graphemes.segment(text),
    ({ segment }) => ({ text: segment, width: graphemeWidth(segment) }),
  );
}

/** The prompt as units: its graphemes, and its colour sequences taking no room. */
function promptUnits(prompt: string): Unit[] {
  // With a capturing group, split() leaves the SGR sequences at the odd indices.
  const pieces = prompt.split(SGR_PIECE);
  if (pieces.some((piece, i) => i % 2 === 0 && /\p{Cc}/u.test(piece))) {
    throw new TypeError(
      `Cannot use prompt ${JSON.stringify(prompt)}: only SGR sequences may hold control characters`,
    );
  }
  return pieces.flatMap((piece, i) => i % 2 === 1 ? [{ text: piece, width: 0 }] : textUnits(piece));
}

/**
 * `text` with every escape sequence but SGR and every control but TAB removed: a
 * line from outside must not move the cursor, or the redraw after it lands wrong.
 */
function printable(text: string): string {
  let coloured = false;
  const out = text.replace(UNSAFE, (match) => {
    if (!SGR.test(match)) return "";
    coloured = true;
    return match;
  });
  // Reset the colours so that the prompt is not drawn in the line's colours.
  const reset = out.endsWith(`${CSI}0m`) || out.endsWith(`${CSI}m`);
  return coloured && !reset ? `${out}${CSI}0m` : out;
}

/** How many UTF-16 units of the buffer's text come after the cursor. */
function restLength(buffer: LineBuffer): number {
  return buffer.parts.slice(buffer.cursor).join("").length;
}

/**
 * The longest start all `words` share, ignoring case, written as the first word
 * writes it; never a cut grapheme.
 */
function commonPrefix(words: readonly string[]): string {
  const split = words.map((word) => Array.from(graphemes.segment(word), (s) => s.segment));
  let length = 0;
  while (
    length < split[0].length &&
    split.every((parts) => parts[length]?.toLowerCase() === split[0][length].toLowerCase())
  ) length++;
  return split[0].slice(0, length).join("");
}

function checkColumns(columns: number): number {
  if (!Number.isInteger(columns) || columns < 1) {
    throw new RangeError(`Cannot use "${columns}" terminal columns: must be a positive integer`);
  }
  return columns;
}

// ---------------------------------------------------------------------------
// The editor

/**
 * Options for {@linkcode LineEditor}.
 *
 * @example
 * ```ts
 * import { type EditorOptions, LineEditor } from "./line_editor.ts";
 * import assert from "node:assert/strict";
 *
 * const options: EditorOptions = { prompt: "you> ", columns: 120, historySize: 100 };
 * assert.equal(new LineEditor(options).render(), "\r\x1b[Jyou> ");
 * ```
 */
export interface EditorOptions {
  /**
   * Prompt shown before the typed text. It may hold SGR colour sequences, and no
   * other control characters.
   *
   * @default {"> "}
   */
  prompt?: string;
  /**
   * Terminal width in columns.
   *
   * @default {80}
   */
  columns?: number;
  /**
   * Maximum number of history entries kept.
   *
   * @default {500}
   */
  historySize?: number;
  /**
   * What Tab completes: called with the word before the cursor (possibly empty)
   * and whether it is the line's first word, it returns the words that complete
   * it (see {@linkcode Completer}). Without it, Tab does nothing.
   */
  complete?: Completer;
}

/**
 * A completion provider for {@linkcode LineEditor}: the words that complete
 * `word`, the text before the cursor back to the last space. `isFirstWord` tells
 * a command or a name at the start of a line from a word further on. A word
 * starting with `/` is a command: completed alone it gets a space after it; a
 * name gets `: ` at the line start (as irssi does) and a space elsewhere.
 */
export type Completer = (word: string, isFirstWord: boolean) => readonly string[];

/**
 * A {@linkcode Completer} for a chat: at the line start, a word beginning with
 * `/` completes to one of `commands`; any other word completes to the names
 * `names()` returns when it is asked. Matching ignores case; results are sorted.
 *
 * @example
 * ```ts
 * import { chatCompleter } from "./line_editor.ts";
 * import assert from "node:assert/strict";
 *
 * const complete = chatCompleter(() => ["Ana", "anabel", "bea"], ["/me", "/msg", "/nick"]);
 * assert.deepEqual(complete("an", true), ["Ana", "anabel"]);
 * assert.deepEqual(complete("/m", true), ["/me", "/msg"]);
 * assert.deepEqual(complete("/m", false), []);
 * ```
 */
export function chatCompleter(
  names: () => readonly string[],
  commands: readonly string[],
): Completer {
  return (word, isFirstWord) => {
    const options = word.startsWith("/") ? (isFirstWord ? commands : []) : names();
    const prefix = word.toLowerCase();
    return options.filter((option) => option.toLowerCase().startsWith(prefix))
      .sort((a, b) => a.localeCompare(b));
  };
}

/**
 * Something the user asked for, reported by {@linkcode LineEditor}'s `feed()`:
 * - `submit`: Enter was pressed; `line` is what was typed. The editor has already
 *   cleared the line from the screen and drawn an empty prompt, so the console can
 *   show the sent line its own way with `printAbove()`.
 * - `interrupt`: Ctrl-C. Nothing changes on screen.
 * - `eof`: Ctrl-D on an empty line. Nothing changes on screen.
 * - `completions`: Tab pressed twice on a word that several words complete;
 *   `words` are those, for the console to print above the prompt
 *   (`printAbove()`). The line is left as it was.
 *
 * @example
 * ```ts
 * import { type EditorEvent, LineEditor } from "./line_editor.ts";
 * import assert from "node:assert/strict";
 *
 * const editor = new LineEditor();
 * const events: EditorEvent[] = editor.feed(new TextEncoder().encode("hi\r\x03\x04")).events;
 * assert.deepEqual(events, [
 *   { type: "submit", line: "hi" },
 *   { type: "interrupt" },
 *   { type: "eof" },
 * ]);
 * ```
 */
export type EditorEvent =
  | { type: "submit"; line: string }
  | { type: "interrupt" }
  | { type: "eof" }
  | { type: "completions"; words: string[] };

/**
 * What {@linkcode LineEditor}'s `feed()` returns: the exact string to write to the
 * terminal (possibly empty), and the events, in the order their keys came.
 *
 * @example
 * ```ts
 * import { type EditorOutput, LineEditor } from "./line_editor.ts";
 * import assert from "node:assert/strict";
 *
 * const editor = new LineEditor();
 * editor.render();
 * const output: EditorOutput = editor.feed(new TextEncoder().encode("a"));
 * assert.deepEqual(output, { write: "a", events: [] });
 * ```
 */
export interface EditorOutput {
  /** What to write to the terminal, as it is. */
  write: string;
  /** What the keys asked for, in order. */
  events: EditorEvent[];
}

/**
 * A line editor for a terminal in raw mode, that does no I/O itself.
 *
 * Keys: text inserts at the cursor; Left, Right, Home, End (also Ctrl-A, Ctrl-E)
 * move; Backspace and Delete remove one character (a grapheme: what shows as one);
 * Ctrl-U, Ctrl-W and Ctrl-K delete to the line start, the word before the cursor,
 * and to the line end; Up and Down walk the history; Ctrl-L redraws; Tab
 * completes the word before the cursor (see {@linkcode EditorOptions.complete}):
 * one match is written out, several complete as far as they agree and a second
 * Tab lists them; Enter submits; Ctrl-C interrupts; Ctrl-D on an empty line
 * reports the end of input.
 * Other control bytes and unknown escape sequences are ignored. Lines pasted
 * between bracketed-paste markers are submitted one per line break.
 *
 * The editor keeps track of what it drew, over how many rows, and where the
 * cursor is, so each write moves and redraws only what changed. It assumes
 * nothing else writes to the terminal: everything shown goes through
 * `printAbove()`.
 *
 * @example Typing, a message arriving, and Enter
 * ```ts
 * import { LineEditor } from "./line_editor.ts";
 * import assert from "node:assert/strict";
 *
 * const keys = (text: string) => new TextEncoder().encode(text);
 * const editor = new LineEditor({ prompt: "> ", columns: 40 });
 * assert.equal(editor.render(), "\r\x1b[J> ");
 * assert.equal(editor.feed(keys("hola")).write, "hola");
 * assert.equal(editor.feed(keys("\x1b[D")).write, "\x1b[1D"); // Left
 * assert.equal(editor.printAbove("<ana> hi"), "\r\x1b[J<ana> hi\r\n> hola\x1b[1D");
 * assert.equal(editor.line, "hola");
 * assert.equal(editor.cursor, 3);
 * const { write, events } = editor.feed(keys("\r"));
 * assert.equal(write, "\r\x1b[J> ");
 * assert.deepEqual(events, [{ type: "submit", line: "hola" }]);
 * ```
 */
export class LineEditor {
  /** The prompt, laid out once. */
  #prompt: Unit[];
  #columns: number;
  #decoder = new KeyDecoder();
  #buffer = new LineBuffer();
  #history: History;
  /**
   * What is on screen: the text and cursor drawn and their layout, so that the
   * next write can be the difference. Null when nothing is drawn and the cursor is
   * at the start of a row: before `render()` and after `clear()`.
   */
  #drawn: { text: string; atEnd: boolean; layout: Layout } | null = null;
  /** Ctrl-L was pressed: the next update redraws everything, whatever changed. */
  #redrawAll = false;
  #complete: Completer | null;
  /**
   * The last key was a Tab that found several words and could complete no
   * further: another Tab right after it lists them. Any other key clears it.
   */
  #ambiguousTab = false;

  /** Makes an editor; nothing is drawn until `render()` or the first key. */
  constructor(options: EditorOptions = {}) {
    this.#prompt = promptUnits(options.prompt ?? "> ");
    this.#columns = checkColumns(options.columns ?? 80);
    const historySize = options.historySize ?? 500;
    if (!Number.isInteger(historySize) || historySize < 0) {
      throw new RangeError(
        `Cannot keep "${historySize}" history entries: must be a non-negative integer`,
      );
    }
    this.#history = new History(historySize);
    this.#complete = options.complete ?? null;
  }

  /** The text typed so far. */
  get line(): string {
    return this.#buffer.text;
  }

  /** The cursor position, in characters (graphemes) from the start of the line. */
  get cursor(): number {
    return this.#buffer.cursor;
  }

  /**
   * Handles raw bytes read from stdin. A chunk may hold several keys, or end in
   * the middle of an escape sequence or UTF-8 character, kept until the next call.
   * A lone ESC at the end of a chunk waits too, so the Escape key on its own takes
   * effect (it does nothing) only with the next key.
   */
  feed(bytes: Uint8Array): EditorOutput {
    const events: EditorEvent[] = [];
    for (const key of this.#decoder.decode(bytes)) this.#apply(key, events);
    return { write: this.#update(), events };
  }

  /**
   * The write that prints `text` above the prompt and redraws the prompt and the
   * typed text, with the cursor where it was. `text` is one line; it may hold SGR
   * colour sequences (colours are reset after it), while other escape sequences
   * and control characters but TAB are removed. Long text wraps on screen. When
   * nothing is drawn (before `render()`, after `clear()`) only the text is printed.
   */
  printAbove(text: string): string {
    const line = `${printable(text)}\r\n`;
    if (this.#drawn === null) return `\r${CLEAR_BELOW}${line}`;
    return this.#redraw(this.#drawn.layout.cursor.row, line);
  }

  /**
   * The terminal is now `columns` wide: the write that redraws for it.
   *
   * Terminals that reflow on resize (VTE, kitty, iTerm2, Windows Terminal, tmux)
   * re-wrap rows that became too long, which moves the cursor down; the editor
   * works out where it went from the rows it drew. On a terminal that does not
   * reflow (xterm), shrinking the window may then erase a few rows above the
   * prompt.
   */
  resize(columns: number): string {
    this.#columns = checkColumns(columns);
    if (this.#drawn === null) return "";
    const { rows, cursor } = this.#drawn.layout;
    let row = Math.floor(cursor.col / columns);
    for (let r = 0; r < cursor.row; r++) row += Math.max(1, Math.ceil(rows[r] / columns));
    return this.#redraw(row);
  }

  /**
   * The write that draws the prompt and the typed text: once after entering raw
   * mode, or again at any time to repaint them in place.
   */
  render(): string {
    return this.#redraw(this.#drawn?.layout.cursor.row ?? 0);
  }

  /** The write that erases the prompt and typed text, leaving the cursor where the prompt began. */
  clear(): string {
    const row = this.#drawn?.layout.cursor.row ?? 0;
    this.#drawn = null;
    return `${row > 0 ? `${CSI}${row}A` : ""}\r${CLEAR_BELOW}`;
  }

  #apply(key: Key, events: EditorEvent[]): void {
    const buffer = this.#buffer;
    const ambiguousTab = this.#ambiguousTab;
    this.#ambiguousTab = false;
    if (typeof key !== "string") return buffer.insert(key.text);
    switch (key) {
      case "complete":
        return this.#completeWord(ambiguousTab, events);
      case "left":
        return buffer.moveTo(buffer.cursor - 1);
      case "right":
        return buffer.moveTo(buffer.cursor + 1);
      case "home":
        return buffer.moveTo(0);
      case "end":
        return buffer.moveTo(buffer.parts.length);
      case "backspace":
        if (buffer.cursor > 0) buffer.delete(buffer.cursor - 1, buffer.cursor);
        return;
      case "delete":
        return buffer.delete(buffer.cursor, buffer.cursor + 1);
      case "killToStart":
        return buffer.delete(0, buffer.cursor);
      case "killWord":
        return buffer.delete(buffer.wordStart(), buffer.cursor);
      case "killToEnd":
        return buffer.delete(buffer.cursor, buffer.parts.length);
      case "redraw":
        this.#redrawAll = true;
        return;
      case "up":
      case "down": {
        const line = this.#history.move(buffer.text, key === "up" ? -1 : 1);
        if (line !== undefined) buffer.set(line);
        return;
      }
      case "enter":
        events.push({ type: "submit", line: buffer.text });
        this.#history.add(buffer.text);
        return buffer.set("");
      case "interrupt":
        events.push({ type: "interrupt" });
        return;
      case "ctrlD":
        if (buffer.text === "") events.push({ type: "eof" });
        else buffer.delete(buffer.cursor, buffer.cursor + 1);
        return;
    }
  }

  /** Tab: completes the word before the cursor, or lists the words on a second Tab. */
  #completeWord(again: boolean, events: EditorEvent[]): void {
    if (this.#complete === null) return;
    const buffer = this.#buffer;
    const { start, word, first } = buffer.wordAtCursor();
    const words = [...new Set(this.#complete(word, first))];
    if (words.length === 0) return;
    const rest = buffer.text.slice(buffer.text.length - restLength(buffer));
    if (words.length === 1) {
      const [only] = words;
      // A name at the line start is addressed ("ana: "); anything else is followed by a space,
      // unless one is already there, which the cursor then steps over.
      const suffix = first && !only.startsWith("/") ? ": " : " ";
      const skip = rest.startsWith(" ") ? 1 : 0;
      buffer.delete(start, buffer.cursor);
      buffer.insert(only + suffix.slice(0, suffix.length - skip));
      buffer.moveTo(buffer.cursor + skip);
      return;
    }
    const common = commonPrefix(words);
    if (common.length > word.length) {
      buffer.delete(start, buffer.cursor);
      buffer.insert(common);
    } else if (again) {
      events.push({ type: "completions", words });
    }
    // Still ambiguous: the next Tab lists the words.
    this.#ambiguousTab = true;
  }

  #layOut(): Layout {
    const units = this.#prompt.concat(
      this.#buffer.parts.map((text) => ({ text, width: graphemeWidth(text) })),
    );
    return layOut(units, this.#prompt.length + this.#buffer.cursor, this.#columns);
  }

  /** The write that brings the screen from what was drawn to the buffer's state. */
  #update(): string {
    const drawn = this.#drawn;
    if (drawn === null || this.#redrawAll) return this.#redraw(drawn?.layout.cursor.row ?? 0);
    const text = this.#buffer.text;
    const atEnd = this.#atEnd();
    const layout = this.#layOut();
    let write: string;
    if (text === drawn.text) {
      write = moveCursor(drawn.layout.cursor, layout.cursor);
    } else if (
      // The common case, typing at the end of the line: write just the new text,
      // when it neither joins the last character nor reaches the next row.
      drawn.atEnd &&
      atEnd &&
      text.startsWith(drawn.text) &&
      this.#buffer.isBoundary(drawn.text.length) &&
      layout.end.row === drawn.layout.end.row
    ) {
      write = text.slice(drawn.text.length);
    } else {
      return this.#redraw(drawn.layout.cursor.row);
    }
    this.#drawn = { text, atEnd, layout };
    return write;
  }

  /**
   * Goes up `row` rows to the prompt's first row, clears from there down, writes
   * `above` (lines to keep above the prompt), then draws the prompt and text.
   */
  #redraw(row: number, above = ""): string {
    this.#redrawAll = false;
    const layout = this.#layOut();
    this.#drawn = { text: this.#buffer.text, atEnd: this.#atEnd(), layout };
    const up = row > 0 ? `${CSI}${row}A` : "";
    return `${up}\r${CLEAR_BELOW}${above}${layout.draw}${moveCursor(layout.end, layout.cursor)}`;
  }

  #atEnd(): boolean {
    return this.#buffer.cursor === this.#buffer.parts.length;
  }
}
