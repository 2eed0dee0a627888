/**
 * How client.ts shows a typed event: the same text as the line protocol (see
 * transports/line_format.ts), made safe again (the server is not trusted), and
 * styled by what the event is, never by parsing its text.
 *
 * @module
 */

import type { ChatEvent, Who } from "../core/messages.ts";
import { renderEvent } from "../transports/line_format.ts";
import type { Styler } from "../terminal/style.ts";
import { sanitizeText } from "../wire/text.ts";

/**
 * The lines to show for an event. `me` marks your own lines (bold) and lines
 * that mention your name (highlighted).
 *
 * @example
 * ```ts
 * import { showEvent } from "./render.ts";
 * import { Styler } from "../terminal/style.ts";
 * import assert from "node:assert/strict";
 *
 * const plain = new Styler({ color: false });
 * const event = {
 *   type: "message", room: "#lobby", from: { id: 2, name: "bea" }, text: "hola\x1b[2J", time: 0,
 * } as const;
 * assert.deepEqual(showEvent(plain, event, null), ["<bea> hola^[[2J"]);
 * ```
 */
export function showEvent(styler: Styler, event: ChatEvent, me: Who | null): string[] {
  styler.follow(event);
  const lines = renderEvent(event).map(sanitizeText);
  if (!styler.color) return lines;
  switch (event.type) {
    case "message":
    case "action": {
      const name = sanitizeText(event.from.name);
      const you = me === null
        ? undefined
        : { name: sanitizeText(me.name), mine: event.from.id === me.id };
      return [styler.said(event.type, name, sanitizeText(event.text), you)];
    }
    case "private": {
      const other = event.echo ? event.to : event.from;
      return [styler.privately(lines[0], sanitizeText(other?.name ?? "server"))];
    }
    case "broadcast":
      return [styler.operator(lines[0])];
    case "history":
      return lines.map((line) => styler.notice(line));
    case "error":
      return lines.map((line) => styler.error(line));
    default:
      return lines.map((line) => styler.notice(line));
  }
}
