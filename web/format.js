// @ts-check
/**
 * The web page's pure helpers: name colours (the terminal's palette and hash),
 * times, the sentences for notices, and what a typed line will do. No DOM, no
 * socket, so Deno tests import this file as it is.
 *
 * @module
 */

/**
 * Name colours, in the terminal's order (lib/terminal/style.ts NAME_COLOURS):
 * entry i here is the colour the terminal shows as `ansi`, with a shade for a
 * dark page and one for a light page, each at least 4.5:1 against the page
 * background (web/format_test.ts checks both). To change the terminal's palette,
 * change this table with it: same length, same order.
 *
 * @type {ReadonlyArray<{ readonly ansi: number, readonly dark: string, readonly light: string }>}
 */
export const NAME_PALETTE = [
  { ansi: 32, dark: "#4ec94e", light: "#1d7a1d" }, // green
  { ansi: 33, dark: "#d4b030", light: "#7d6000" }, // yellow
  { ansi: 35, dark: "#d070d0", light: "#9c2f9c" }, // magenta
  { ansi: 36, dark: "#3cc0c0", light: "#0b7076" }, // cyan
  { ansi: 92, dark: "#8cf08c", light: "#3f6e00" }, // bright green
  { ansi: 93, dark: "#f5f06a", light: "#8a4b00" }, // bright yellow
  { ansi: 94, dark: "#80a8ff", light: "#2b55c8" }, // bright blue
  { ansi: 95, dark: "#ff90ff", light: "#b3247f" }, // bright magenta
  { ansi: 96, dark: "#90f0ff", light: "#006f8f" }, // bright cyan
  { ansi: 34, dark: "#8c9cff", light: "#2a36b8" }, // blue
];

/**
 * The palette index of a name: the same for the same name in any case, and
 * the same as the terminal's (FNV-1a over the lower-cased code points).
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
 * Whether `text` mentions `name` as a whole word, in any case (as client.ts
 * decides which lines to highlight).
 *
 * @param {string} text
 * @param {string} name
 * @returns {boolean}
 */
export function mentions(text, name) {
  const escaped = name.replace(/[-_]/g, (c) => `\\${c}`);
  return new RegExp(`(^|[^A-Za-z0-9_-])${escaped}($|[^A-Za-z0-9_-])`, "i").test(text);
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
