// @ts-check
/**
 * The web page's pure helpers: name colours (the terminal's palette and hash),
 * times, the sentences for notices, and what a typed line will do. No DOM, no
 * socket, so Deno tests import this file as it is.
 *
 * @module
 */

/**
 * Name colours: entry i is the colour the terminal shows as xterm-256 colour
 * `xterm` (lib/terminal/style.ts PALETTE_256, same length and order), in a
 * shade of the same hue for each page scheme that reads at 4.5:1 or more on
 * every background names appear on (web/format_test.ts checks both, and the
 * alignment with the terminal). The terminal's own hex value is in the comment.
 *
 * @type {ReadonlyArray<{ readonly xterm: number, readonly light: string, readonly dark: string }>}
 */
export const NAME_PALETTE = [
  { xterm: 166, light: "#ae4d00", dark: "#f16a00" }, // dark orange    #d75f00
  { xterm: 94, light: "#875f00", dark: "#c48a00" }, //  brown          #875f00
  { xterm: 136, light: "#866800", dark: "#b98f00" }, // dark goldenrod #af8700
  { xterm: 58, light: "#5f5f00", dark: "#979700" }, //  olive          #5f5f00
  { xterm: 64, light: "#517300", dark: "#71a100" }, //  moss green     #5f8700
  { xterm: 28, light: "#007d00", dark: "#00ab00" }, //  green          #008700
  { xterm: 29, light: "#007854", dark: "#00ab78" }, //  sea green      #00875f
  { xterm: 30, light: "#007878", dark: "#00a6a6" }, //  teal           #008787
  { xterm: 31, light: "#007395", dark: "#009fce" }, //  deep sky blue  #0087af
  { xterm: 25, light: "#005faf", dark: "#1694ff" }, //  dark blue      #005faf
  { xterm: 33, light: "#0069c7", dark: "#1f95ff" }, //  azure          #0087ff
  { xterm: 62, light: "#5b5bd6", dark: "#8c8ce2" }, //  slate blue     #5f5fd7
  { xterm: 63, light: "#5050ff", dark: "#8888ff" }, //  royal blue     #5f5fff
  { xterm: 104, light: "#5d5dc9", dark: "#8b8bd8" }, // lavender       #8787d7
  { xterm: 93, light: "#8700ff", dark: "#bc70ff" }, //  violet         #8700ff
  { xterm: 92, light: "#8700d7", dark: "#c667ff" }, //  purple         #8700d7
  { xterm: 134, light: "#9d3ace", dark: "#bb77dd" }, // medium orchid  #af5fd7
  { xterm: 171, light: "#af00e9", dark: "#d75fff" }, // orchid         #d75fff
  { xterm: 165, light: "#b500d6", dark: "#e34dff" }, // electric purple #d700ff
  { xterm: 127, light: "#af00af", dark: "#ff07ff" }, // magenta        #af00af
  { xterm: 200, light: "#c700a8", dark: "#ff33df" }, // hot magenta    #ff00d7
  { xterm: 126, light: "#af0087", dark: "#ff3ad2" }, // plum           #af0087
  { xterm: 199, light: "#cc008c", dark: "#ff42c4" }, // deep pink      #ff00af
  { xterm: 169, light: "#bb2f8c", dark: "#da6bb5" }, // pink orchid    #d75faf
];

/**
 * The palette index a name gets from its hash alone: the same for the same
 * name in any case, and the terminal's (FNV-1a over the lower-cased code
 * points, as lib/terminal/style.ts nameColour).
 *
 * @param {string} name
 * @returns {number}
 */
export function nameIndex(name) {
  let hash = 0x811c9dc5;
  for (const c of name.toLowerCase()) {
    hash ^= /** @type {number} */ (c.codePointAt(0));
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % NAME_PALETTE.length;
}

/**
 * Colours for the people present, so that they rarely share one, as the
 * terminal's NamePalette (lib/terminal/style.ts) does it: a name gets its hash
 * colour unless another present name holds it, then the next free one; it keeps
 * it while it stays (and across a rename) and frees it when it leaves. Names
 * compare ignoring case. Past `maxNames` the name seen least recently is
 * forgotten.
 */
export class NameColours {
  /** @param {{ maxNames?: number }} [options] */
  constructor(options = {}) {
    this.maxNames = options.maxNames ?? 1000;
    /** @type {Map<string, number>} lower-cased name -> palette index; oldest first */
    this.names = new Map();
    /** @type {number[]} how many present names hold each index */
    this.holders = new Array(NAME_PALETTE.length).fill(0);
  }

  /**
   * The palette index of `name`; a name not yet present joins.
   *
   * @param {string} name
   * @returns {number}
   */
  index(name) {
    const key = name.toLowerCase();
    const known = this.names.get(key);
    if (known !== undefined) {
      this.names.delete(key); // seen again: now the most recent
      this.names.set(key, known);
      return known;
    }
    if (this.names.size >= this.maxNames) this.leave(this.names.keys().next().value ?? "");
    const index = this.#pick(nameIndex(name));
    this.names.set(key, index);
    this.holders[index] += 1;
    return index;
  }

  /** The colours of `name`. @param {string} name */
  colour(name) {
    return NAME_PALETTE[this.index(name)];
  }

  /** `name` left: its colour is free for the next to come. @param {string} name */
  leave(name) {
    const key = name.toLowerCase();
    const index = this.names.get(key);
    if (index === undefined) return;
    this.names.delete(key);
    this.holders[index] -= 1;
  }

  /**
   * `from` is now called `to`, and keeps its colour.
   *
   * @param {string} from
   * @param {string} to
   */
  rename(from, to) {
    const index = this.names.get(from.toLowerCase());
    if (index === undefined) {
      this.index(to);
      return;
    }
    this.names.delete(from.toLowerCase());
    const taken = this.names.get(to.toLowerCase());
    if (taken !== undefined) this.holders[taken] -= 1;
    this.names.set(to.toLowerCase(), index);
  }

  /** @param {number} preferred */
  #pick(preferred) {
    for (let step = 0; step < NAME_PALETTE.length; step++) {
      const index = (preferred + step) % NAME_PALETTE.length;
      if (this.holders[index] === 0) return index;
    }
    return preferred;
  }
}

/**
 * A time as the page shows it: `14:05` today, `2026-11-23 14:05` another day,
 * in the browser's time zone.
 *
 * @param {number} time milliseconds since the epoch
 * @param {number} [now] the current time, for tests
 * @returns {string}
 */
export function formatTime(time, now = Date.now()) {
  const d = new Date(time);
  const two = (/** @type {number} */ n) => String(n).padStart(2, "0");
  const hm = `${two(d.getHours())}:${two(d.getMinutes())}`;
  const today = new Date(now);
  if (
    d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() &&
    d.getDate() === today.getDate()
  ) return hm;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${hm}`;
}

/**
 * The reason someone left, for people (as lib/core/messages.ts describeLeave).
 *
 * @param {string} name
 * @param {string} reason
 * @returns {string}
 */
export function describeLeave(name, reason) {
  return reason === "eof" ? `${name} left` : `${name} left (${reason})`;
}

/**
 * A whole-word, any-case match of `name` (global, for split), as the terminal
 * finds mentions: letters, digits, `_` and `-` around it join a word.
 *
 * @param {string} name
 * @returns {RegExp}
 */
function mentionPattern(name) {
  const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  return new RegExp(`(?<![\\p{L}\\p{N}_-])${escaped}(?![\\p{L}\\p{N}_-])`, "giu");
}

/**
 * Whether `text` mentions `name` as a whole word, in any case (as
 * lib/terminal/style.ts mentions).
 *
 * @param {string} text
 * @param {string} name
 * @returns {boolean}
 */
export function mentions(text, name) {
  return name !== "" && mentionPattern(name).test(text);
}

/**
 * `text` cut where it mentions `name`: the mentions at odd indexes, to be
 * shown marked (as text, never HTML).
 *
 * @param {string} text
 * @param {string} name
 * @returns {string[]}
 */
export function splitMentions(text, name) {
  if (name === "") return [text];
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(mentionPattern(name))) {
    parts.push(text.slice(last, match.index), match[0]);
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

/**
 * What a line typed in the box will do, so the page can show it at once (the
 * server does not echo what you say): `say` and `action` are shown as your own
 * line, `private` waits for the server's copy, `command` is shown dim, `quit`
 * also tells the page not to reconnect. `text` is what will be said.
 *
 * @param {string} line
 * @returns {{ kind: "say" | "action" | "private" | "command" | "quit", text: string }}
 */
export function classifyTyped(line) {
  if (line.startsWith("//")) return { kind: "say", text: line.slice(1) };
  if (!line.startsWith("/")) return { kind: "say", text: line };
  const match = /^\/(\S*)\s?([\s\S]*)$/.exec(line);
  const command = (match?.[1] ?? "").toLowerCase();
  const rest = match?.[2] ?? "";
  if (command === "me") return { kind: "action", text: rest };
  if (command === "msg" || command === "m" || command === "query") {
    return { kind: "private", text: rest };
  }
  if (command === "quit" || command === "exit") return { kind: "quit", text: rest };
  return { kind: "command", text: line };
}

/**
 * The sentence for an event that is not someone's line, or null for events
 * the page shows another way.
 *
 * @param {Record<string, any>} event a ChatEvent (lib/core/messages.ts)
 * @returns {string | null}
 */
export function describe(event) {
  switch (event.type) {
    case "join":
      return `${event.who.name} joined ${event.room}`;
    case "part":
      return `${event.who.name} left ${event.room}` +
        (event.to ? ` for ${event.to}` : "") + (event.reason ? ` (${event.reason})` : "");
    case "quit":
      return describeLeave(event.who.name, event.reason);
    case "nick":
      return `${event.from} is now ${event.who.name}`;
    case "topic":
      return event.topic === ""
        ? `${event.by ?? "server"} cleared the topic`
        : `${event.by ?? "server"} set the topic: ${event.topic}`;
    case "topic_is":
      return event.topic === ""
        ? `${event.room} has no topic`
        : `The topic of ${event.room} is: ${event.topic}`;
    case "welcome":
      return `Welcome to ${event.server}, you are ${event.you.name}`;
    case "renamed":
      return `You are now ${event.you.name}`;
    case "joined": {
      const others = event.count - 1;
      return `You are in ${event.room}, ` +
        (others === 0 ? "nobody else is here" : `with ${others} other${others === 1 ? "" : "s"}`) +
        (event.topic ? `. Topic: ${event.topic}` : "");
    }
    case "parted":
      return `You left ${event.room}`;
    case "whois": {
      const parts = [
        `${event.who.name} (${event.transport})`,
        event.rooms.length > 0 ? `in ${event.rooms.join(", ")}` : "in no room",
        `connected since ${formatTime(event.since)}`,
        `idle ${event.idleSeconds} s`,
      ];
      if (event.away !== undefined) parts.push(`away: ${event.away}`);
      if (event.address !== undefined) parts.push(`from ${event.address}`);
      return parts.join(", ");
    }
    case "away_is":
      return `${event.who.name} is away: ${event.text}`;
    case "away":
      return event.text === undefined ? "You are back" : `You are away: ${event.text}`;
    case "ignoring":
      return event.names.length === 0
        ? "You ignore nobody"
        : `You ignore ${event.names.join(", ")}`;
    case "info":
      return event.text;
    case "error":
      return `error: ${event.text}`;
    case "rooms":
      return event.rooms.length === 0 ? "No rooms" : "Rooms: " + event.rooms.map(
        (/** @type {{ room: string, count: number }} */ r) => `${r.room} (${r.count})`,
      ).join(", ");
    case "who":
      return `In ${event.room} (${event.count}): ` + event.members.map(
        (/** @type {{ name: string, away?: string }} */ m) =>
          m.away === undefined ? m.name : `${m.name} (away)`,
      ).join(", ") + (event.count > event.members.length ? ", …" : "");
    default:
      return null;
  }
}
