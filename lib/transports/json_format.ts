/**
 * The JSON wire format: every event as one JSON object, exactly as typed in
 * core/messages.ts. The web page gets one per WebSocket frame; a line client
 * that asked with `/json` (client.ts does) gets one per line.
 *
 * @module
 */

import type { ChatEvent, RoomEvent, RoomName, Who } from "../core/messages.ts";
import type { SaidBatch, WireFormat } from "../core/peer.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * The events a batch stands for: one `message` or `action` per line.
 *
 * @example
 * ```ts
 * import { batchEvents } from "./json_format.ts";
 * import { SaidBatch } from "../core/peer.ts";
 * import assert from "node:assert/strict";
 *
 * const batch = new SaidBatch();
 * batch.text.appendText("hola");
 * batch.endLine();
 * batch.time = 0;
 * assert.deepEqual(batchEvents("#lobby", { id: 1, name: "ana" }, batch), [
 *   { type: "message", room: "#lobby", from: { id: 1, name: "ana" }, text: "hola", time: 0 },
 * ]);
 * ```
 */
export function batchEvents(room: RoomName, from: Who, batch: SaidBatch): ChatEvent[] {
  const who = { id: from.id, name: from.name };
  const type = batch.kind === "action" ? "action" : "message";
  const events: ChatEvent[] = [];
  const bytes = batch.text.bytes;
  for (let i = 0; i < batch.count; i++) {
    const text = decoder.decode(bytes.subarray(batch.start(i), batch.ends[i]));
    events.push({ type, room, from: who, text, time: batch.time });
  }
  return events;
}

/** One event as a JSON line (with its `\n`), as bytes. */
export function jsonLine(event: ChatEvent): Uint8Array {
  return encoder.encode(JSON.stringify(event) + "\n");
}

/** JSON lines as a {@linkcode WireFormat}: a batch is one buffer of one line per event. */
export const JSON_LINES_FORMAT: WireFormat<Uint8Array> = {
  name: "json",
  encodeLines(room, from, batch) {
    const events = batchEvents(room, from, batch);
    return encoder.encode(events.map((e) => JSON.stringify(e)).join("\n") + "\n");
  },
  encodeEvent(event: RoomEvent): Uint8Array {
    return jsonLine(event);
  },
};

/** JSON frames as a {@linkcode WireFormat}: one WebSocket text frame per event. */
export const JSON_FRAMES_FORMAT: WireFormat<string[]> = {
  name: "web",
  encodeLines(room, from, batch) {
    return batchEvents(room, from, batch).map((e) => JSON.stringify(e));
  },
  encodeEvent(event: RoomEvent): string[] {
    return [JSON.stringify(event)];
  },
};
