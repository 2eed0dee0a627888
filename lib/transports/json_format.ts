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

/**
 * Events as WebSocket text frames, one event per frame, with their total size
 * in UTF-8 bytes: the unit a socket's `bufferedAmount` counts in, so a web peer
 * can tell how much of what it sent has gone out (see web.ts). Made once per
 * batch and shared by every web member of a room.
 */
export interface JsonFrames {
  /** One JSON text per event. */
  readonly frames: readonly string[];
  /** Their total length in UTF-8 bytes. */
  readonly bytes: number;
}

/**
 * The length of `text` in UTF-8 bytes, without encoding it. A lone surrogate
 * counts 3, as the U+FFFD it is sent as.
 *
 * @example
 * ```ts
 * import { utf8Length } from "./json_format.ts";
 * import assert from "node:assert/strict";
 *
 * for (const text of ["hola", "ñandú", "你好", "👋🏽", "\ud800x"]) {
 *   assert.equal(utf8Length(text), new TextEncoder().encode(text).length);
 * }
 * ```
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 2; // a pair: two units, four bytes
      i++;
    } else bytes += 2;
  }
  return bytes;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** One event as a {@linkcode JsonFrames} of one frame. */
export function jsonFrame(event: ChatEvent): JsonFrames {
  const frame = JSON.stringify(event);
  return { frames: [frame], bytes: utf8Length(frame) };
}

/** JSON frames as a {@linkcode WireFormat}: one WebSocket text frame per event. */
export const JSON_FRAMES_FORMAT: WireFormat<JsonFrames> = {
  name: "web",
  encodeLines(room, from, batch) {
    const frames = batchEvents(room, from, batch).map((e) => JSON.stringify(e));
    let bytes = 0;
    for (const frame of frames) bytes += utf8Length(frame);
    return { frames, bytes };
  },
  encodeEvent(event: RoomEvent): JsonFrames {
    return jsonFrame(event);
  },
};
