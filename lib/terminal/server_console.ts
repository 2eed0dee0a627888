/**
 * The operator's view of a server: every event and message as a line, with a
 * time stamp and who did it (or as JSON lines), and the operator's console
 * reading commands from stdin.
 *
 * @module
 */

import type { ChatServer } from "../chat_server.ts";
import type { PeerInfo, ServerEvent, ServerLog } from "../core/events.ts";
import type { SaidBatch } from "../core/peer.ts";
import { formatUntil } from "../core/bans.ts";
import { describeLeave } from "../core/messages.ts";
import { runOperatorLine } from "../operator.ts";
import { type Input, type LineOutput, readLines } from "./output.ts";
import type { Styler } from "./style.ts";

const LF = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Local time as `HH:MM:SS`, recomputed at most once a second. */
class Clock {
  /** Until when (Date.now() time) the cached stamp is right. */
  #until = 0;
  #text = "";
  #bytes = new Uint8Array();
  #dim = new Uint8Array();
  /** The current time stamp, with a trailing space. */
  stamp(): string {
    this.#update();
    return this.#text;
  }
  /** The stamp, dim, as UTF-8 bytes; of `now` when given (a batch's time: no clock read a line). */
  dimBytes(now?: number): Uint8Array {
    this.#update(now);
    return this.#dim;
  }
  /** The same, as UTF-8 bytes: for the per-line path. */
  stampBytes(now?: number): Uint8Array {
    this.#update(now);
    return this.#bytes;
  }
  #update(now = Date.now()): void {
    if (now < this.#until) return;
    const d = new Date(now);
    this.#until = now - d.getMilliseconds() + 1000;
    this.#text = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} `;
    this.#bytes = encoder.encode(this.#text);
    this.#dim = encoder.encode(`\x1b[2m${this.#text}\x1b[0m`);
  }
}

/** `12,345`. */
function count(n: number): string {
  return n.toLocaleString("en");
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * Bytes per second an output must keep writing, while it is behind, for the
 * chat to wait for it rather than have lines skipped: a file or a terminal
 * writes tens of MB a second, a paused one nothing.
 */
export const MIN_OUTPUT_RATE = 1024 * 1024;
/** How often, in milliseconds, a behind output's progress is checked. */
export const OUTPUT_WINDOW_MS = 50;

/** Options for {@linkcode ServerConsole}. */
export interface ServerConsoleOptions {
  /**
   * One JSON object per line for every event, instead of the human format.
   * @default {false}
   */
  json?: boolean;
  /** Colours for a terminal (time stamps dim, names coloured, problems red). @default none */
  styler?: Styler;
}

/**
 * The operator's view of a server: a {@linkcode ServerLog} that writes each
 * event and message as a line, with a time stamp and who did it.
 *
 * A slow or stalled output never stops the chat. Past its backlog mark, the
 * console asks senders to wait only while the output keeps writing at least
 * {@linkcode MIN_OUTPUT_RATE} (a file, a terminal that scrolls): then every
 * line is kept. An output that falls below that (a paused terminal, a pipe
 * nobody reads, a full disk) is caught within two {@linkcode OUTPUT_WINDOW_MS};
 * from then lines are counted instead of kept until it has caught up, and
 * one line says how many were skipped: `* 1,234 log lines skipped`
 * (`{"event":"skipped","lines":1234}` in JSON).
 *
 * @example
 * ```ts
 * import { ServerConsole } from "./server_console.ts";
 * import { OutputBuffer } from "./output.ts";
 * import assert from "node:assert/strict";
 *
 * let text = "";
 * const out = new OutputBuffer({
 *   write: (p: Uint8Array) => Promise.resolve((text += new TextDecoder().decode(p)).length && p.length),
 * });
 * const log = new ServerConsole(out, { json: true });
 * const peer = { id: 1, name: "ana", address: "127.0.0.1:50000", since: new Date(), transport: "line" };
 * log.message("#lobby", peer, new TextEncoder().encode("hola"), 0, 4);
 * await out.drained();
 * const event = JSON.parse(text);
 * assert.equal(event.event, "message");
 * assert.equal(event.text, "hola");
 * assert.equal(event.room, "#lobby");
 * ```
 */
export class ServerConsole implements ServerLog {
  /** Where lines go. */
  readonly out: LineOutput;
  readonly #json: boolean;
  readonly #styler: Styler | null;
  readonly #clock = new Clock();
  /** `[#room name] ` (`[#id name] ` without rooms) of the last message's sender, as bytes. */
  #tagPeer: PeerInfo | null = null;
  #tagName = "";
  #tagRoom: string | null = null;
  #tag: Uint8Array = new Uint8Array();
  /** The stamp and the tag together, for a batch's lines; remade when either changes. */
  #lead: Uint8Array = new Uint8Array();
  #leadStamp: Uint8Array | null = null;
  #leadTag: Uint8Array | null = null;
  /** Lines skipped since the output fell behind; 0 while it keeps up. */
  #skipped = 0;
  /** The wait senders share while a behind output makes progress; null otherwise. */
  #waiting: Promise<void> | null = null;

  /** A console writing to `out`. */
  constructor(out: LineOutput, options: ServerConsoleOptions = {}) {
    this.out = out;
    this.#json = options.json ?? false;
    this.#styler = options.styler?.color ? options.styler : null;
  }

  /** Lines skipped and not yet reported. */
  get skipped(): number {
    return Math.max(0, this.#skipped - 1);
  }

  /** Whether a line may be written now; counts it as skipped when not. */
  #room(): boolean {
    if (this.#skipped === 0) return true;
    this.#skipped++;
    return false;
  }

  /**
   * Stops keeping lines (the output stalled): they are counted from now until
   * `drained` settles, then one line says how many were skipped.
   */
  #startSkipping(drained: Promise<void>): void {
    if (this.#skipped > 0) return;
    this.#skipped = 1; // counts from 1, so that 0 means "keeping"; see #reportSkipped
    drained.then(() => this.#reportSkipped());
  }

  #reportSkipped(): void {
    const skipped = this.#skipped - 1;
    this.#skipped = 0;
    if (skipped === 0) return;
    if (this.#json) {
      this.out.line(
        JSON.stringify({ time: new Date().toISOString(), event: "skipped", lines: skipped }),
      );
    } else {
      const noun = skipped === 1 ? "line" : "lines";
      this.out.line(`${this.#clock.stamp()}* ${skipped.toLocaleString("en")} log ${noun} skipped`);
    }
  }

  /** Writes one event. */
  event(event: ServerEvent): void {
    if (!this.#room()) return;
    if (this.#json) {
      this.out.line(JSON.stringify(toJson(event)));
    } else {
      // The listening line has no time stamp, so scripts can read the port.
      const stamp = event.event === "listening" ? "" : this.#clock.stamp();
      const text = describe(event);
      const styler = this.#styler;
      if (styler === null) return this.out.line(stamp + text);
      follow(styler, event);
      this.out.line(styler.stamp(stamp) + styleEvent(styler, event, text));
    }
  }

  /**
   * Writes one message line: `HH:MM:SS [#room name] text` (`[#id name]` without
   * rooms; `[node #room name]` for someone on another node of a cluster).
   */
  message(
    room: string | null,
    peer: PeerInfo,
    text: Uint8Array,
    start: number,
    end: number,
    time?: number,
  ): void {
    if (!this.#room()) return;
    if (this.#json) {
      const line = decoder.decode(text.subarray(start, end));
      this.out.line(
        JSON.stringify({
          time: new Date().toISOString(),
          event: "message",
          room,
          ...who(peer),
          text: line,
        }),
      );
      return;
    }
    this.#setTag(room, peer);
    const pending = this.out.pending;
    pending.append(this.#stamp(time));
    pending.append(this.#tag);
    pending.append(text, start, end);
    pending.appendByte(LF);
    this.out.flush();
  }

  /**
   * Writes lines `first..` of a batch as {@linkcode message} would each, the
   * text in one copy: a stamp and a tag alike for every line of the batch.
   */
  lines(room: string, peer: PeerInfo, batch: SaidBatch, first: number): void {
    const count = batch.count;
    if (this.#json || this.#skipped > 0) {
      const text = batch.text.bytes;
      for (let i = first; i < count; i++) {
        this.message(room, peer, text, batch.start(i), batch.ends[i], batch.time);
      }
      return;
    }
    this.#setTag(room, peer);
    const stamp = this.#stamp(batch.time);
    if (stamp !== this.#leadStamp || this.#tag !== this.#leadTag) {
      this.#leadStamp = stamp;
      this.#leadTag = this.#tag;
      this.#lead = new Uint8Array(stamp.length + this.#tag.length);
      this.#lead.set(stamp);
      this.#lead.set(this.#tag, stamp.length);
    }
    this.out.pending.appendPrefixedLines(this.#lead, batch.text.bytes, batch.ends, first, count);
    this.out.flush();
  }

  /** The time stamp of a line said at `time` (now, when not given), dim on a colour terminal. */
  #stamp(time?: number): Uint8Array {
    return this.#styler === null ? this.#clock.stampBytes(time) : this.#clock.dimBytes(time);
  }

  /** Makes `#tag` the sender's, unless it is already. */
  #setTag(room: string | null, peer: PeerInfo): void {
    if (peer === this.#tagPeer && peer.name === this.#tagName && room === this.#tagRoom) return;
    this.#tagPeer = peer;
    this.#tagName = peer.name;
    this.#tagRoom = room;
    const name = this.#styler?.name(peer.name) ?? peer.name;
    const where = room ?? `#${peer.id}`;
    this.#tag = encoder.encode(
      peer.node === undefined ? `[${where} ${name}] ` : `[${peer.node} ${where} ${name}] `,
    );
  }

  /**
   * Undefined while the output keeps up (or lines are being skipped);
   * otherwise a wait that settles when the backlog is written, or as soon as
   * the output is seen writing less than {@linkcode MIN_OUTPUT_RATE}, when
   * lines start being skipped instead.
   */
  ready(): Promise<void> | undefined {
    if (this.#skipped > 0) return undefined;
    const behind = this.out.ready();
    if (behind === undefined) return undefined;
    return this.#waiting ??= this.#waitWhileWriting(behind);
  }

  async #waitWhileWriting(drained: Promise<void>): Promise<void> {
    let done = false;
    drained.then(() => done = true);
    // Two slow windows in a row, not one: a write completion can wait behind a
    // busy turn of the event loop as long as the timer can.
    let slow = 0;
    try {
      while (!done) {
        const before = this.out.written;
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          drained,
          new Promise((resolve) => timer = setTimeout(resolve, OUTPUT_WINDOW_MS)),
        ]);
        clearTimeout(timer);
        if (done) return;
        const wrote = this.out.written - before;
        slow = wrote < MIN_OUTPUT_RATE * OUTPUT_WINDOW_MS / 1000 ? slow + 1 : 0;
        if (slow === 2) return this.#startSkipping(drained);
      }
    } finally {
      this.#waiting = null;
    }
  }

  /** Writes a reply to an operator command: plain lines, no time stamp. */
  reply(text: string): void {
    if (this.#json) {
      this.out.line(JSON.stringify({ time: new Date().toISOString(), event: "reply", text }));
    } else this.out.line(text);
  }
}

/** `#7 ana`; `node-b #7 ana` for someone on another node of a cluster. */
function label(peer: PeerInfo | null): string {
  if (peer === null) return "server";
  return peer.node === undefined
    ? `#${peer.id} ${peer.name}`
    : `${peer.node} #${peer.id} ${peer.name}`;
}

/** `node-b ` for someone on another node of a cluster; empty for people here. */
function where(peer: PeerInfo): string {
  return peer.node === undefined ? "" : `${peer.node} `;
}

/** An event's line in colour: problems red, notices dim, what people say with names coloured. */
function styleEvent(styler: Styler, event: ServerEvent, text: string): string {
  switch (event.event) {
    case "refused":
    case "error":
    case "store_failed":
      return styler.error(text);
    case "listening":
    case "shutdown":
      return text;
    case "private": {
      const tag = text.slice(0, text.indexOf("] ") + 2);
      return styler.notice(tag) + text.slice(tag.length);
    }
    case "broadcast":
      return styler.operator(text);
    default:
      return styler.notice(text);
  }
}

/** Keeps the palette in step with who is connected. */
function follow(styler: Styler, event: ServerEvent): void {
  if (event.event === "connect") styler.palette.join(event.peer.name);
  else if (event.event === "leave") styler.palette.leave(event.peer.name);
  else if (event.event === "nick") styler.palette.rename(event.from, event.peer.name);
}

/** An event in the human format, without its time stamp. */
function describe(event: ServerEvent): string {
  switch (event.event) {
    case "listening":
      return event.transport === "line"
        ? `listening on ${event.address}`
        : `listening on ${event.address} (${event.transport})`;
    case "connect":
      if (event.peer.node !== undefined) {
        return `* ${label(event.peer)} connected (${event.peer.transport})`;
      }
      return `* ${label(event.peer)} connected from ${event.peer.address}` +
        (event.peer.transport === "line" ? "" : ` (${event.peer.transport})`);
    case "join":
      return `* ${label(event.peer)} joined ${event.room}`;
    case "part":
      return `* ${label(event.peer)} left ${event.room}` +
        (event.to !== undefined ? ` for ${event.to}` : "") +
        (event.reason !== undefined ? ` (${event.reason})` : "");
    case "leave":
      return `* ${where(event.peer)}#${event.peer.id} ${
        describeLeave(event.peer.name, event.reason)
      }`;
    case "nick":
      return `* ${where(event.peer)}#${event.peer.id} ${event.from} is now ${event.peer.name}`;
    case "action":
      return event.room === null
        ? `** ${label(event.peer)} ${event.text}`
        : event.peer.node === undefined
        ? `[${event.room}] ** ${event.peer.name} ${event.text}`
        : `[${event.peer.node} ${event.room}] ** ${event.peer.name} ${event.text}`;
    case "private":
      return `[${label(event.from)} -> ${label(event.to)}] ${event.text}`;
    case "broadcast":
      return `[${event.room ?? "everyone"} server] ${event.text}`;
    case "topic":
      return `* ${label(event.peer)} set the topic of ${event.room}: ${event.topic}`;
    case "kick":
      return `* ${label(event.peer)} kicked${event.reason === "" ? "" : `: ${event.reason}`}`;
    case "refused":
      return `! refused ${event.address}: ${event.reason}`;
    case "ban":
      return `* banned ${event.mask}` +
        (event.until === null ? "" : ` until ${formatUntil(event.until)}`) +
        (event.reason === "" ? "" : `: ${event.reason}`);
    case "unban":
      return `* unbanned ${event.mask}`;
    case "store":
      return `* store: ${count(event.stored)} lines written (longest wait ${event.maxMs} ms)` +
        (event.pruned > 0 ? `, ${count(event.pruned)} old lines pruned` : "");
    case "store_failed":
      return `! store: ${event.message}`;
    case "store_recovered":
      return `* store: writing again` +
        (event.dropped > 0 ? `; ${count(event.dropped)} lines were lost meanwhile` : "");
    case "error":
      return event.peer === null
        ? `! ${event.message}`
        : `! ${label(event.peer)}: ${event.message}`;
    case "shutdown":
      return `* ${event.reason}`;
    case "cluster":
      return `* cluster: ${event.message}`;
    case "tls":
      return `* self-signed certificate; clients connect with --fingerprint ${event.fingerprint}`;
  }
}

function who(
  peer: PeerInfo,
): { id: number; name: string; address: string; transport: string; node?: string } {
  const fields = { id: peer.id, name: peer.name, address: peer.address, transport: peer.transport };
  return peer.node === undefined ? fields : { ...fields, node: peer.node };
}

/** An event as a flat JSON object with an ISO time. */
function toJson(event: ServerEvent): Record<string, unknown> {
  const time = new Date().toISOString();
  switch (event.event) {
    case "connect":
    case "join":
    case "part":
    case "leave":
    case "nick":
    case "action":
    case "kick": {
      const { peer, ...rest } = event;
      return { time, ...rest, ...who(peer) };
    }
    case "topic": {
      const { peer, ...rest } = event;
      return { time, ...rest, ...(peer === null ? { name: "server" } : who(peer)) };
    }
    case "private":
      return {
        time,
        event: "private",
        from: event.from === null ? null : who(event.from),
        to: event.to === null ? null : who(event.to),
        text: event.text,
      };
    case "error":
      return {
        time,
        event: "error",
        ...(event.peer === null ? {} : who(event.peer)),
        message: event.message,
      };
    default:
      return { time, ...event };
  }
}

/**
 * Runs one line the operator typed and shows the replies; `/quit` shuts the
 * server down.
 */
export function operatorLine(server: ChatServer, console: ServerConsole, line: string): void {
  const result = runOperatorLine(server, line);
  for (const reply of result.replies) console.reply(reply);
  if (result.quit) void server.shutdown();
}

/**
 * The operator's console without a terminal: reads lines from `input` (stdin)
 * and runs them until input ends, which ends the console only: the server goes
 * on serving.
 */
export async function runOperatorConsole(
  server: ChatServer,
  console: ServerConsole,
  input: Input,
): Promise<void> {
  try {
    await readLines(input, {
      line(buf, start, end) {
        operatorLine(server, console, decoder.decode(buf.subarray(start, end)));
      },
      overlong() {
        console.reply("error: line too long; not sent");
      },
    });
  } catch (error) {
    // An unreadable stdin ends the console; it must not end the server.
    console.reply(
      `error: cannot read the console: ${error instanceof Error ? error.message : error}`,
    );
  }
  console.reply("(console input ended; still serving, stop with Ctrl-C or SIGTERM)");
}
