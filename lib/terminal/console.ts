/**
 * The terminal side of charla, and the only library module that reads stdin or
 * writes stdout and stderr: buffered output, stdin lines, and the operator's
 * view of the server (human-readable or JSON lines).
 *
 * Stdin is read with plain `Deno.stdin.read()` calls and our own line splitting:
 * a cancelled `Deno.stdin.readable` can lose a line, and a pending stdin read
 * cannot be ended, so the read is simply left pending when the program exits.
 *
 * @module
 */

import type { ChatServer } from "../chat_server.ts";
import type { ReadSink } from "../net/connection.ts";
import type { PeerInfo, ServerEvent, ServerLog } from "../core/events.ts";
import { describeLeave } from "../core/events.ts";
import { LineDecoder, type LineSink } from "../wire/frame.ts";
import { type Completer, LineEditor } from "./line_editor.ts";
import { runOperatorLine } from "../core/operator.ts";
import { ByteBuilder } from "../wire/text.ts";

const LF = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Where output goes: `Deno.stdout`, `Deno.stderr`, a file, or a test's collector. */
export interface Output {
  /** Writes some of `p`; returns how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Where input comes from: `Deno.stdin`, or a test's source. */
export interface Input {
  /** Reads into `p`; null at end of input. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * Where lines of output go: a plain {@linkcode OutputBuffer}, or a
 * {@linkcode Terminal}'s output, which prints them above the prompt.
 */
export interface LineOutput {
  /** Bytes of whole lines (each ending in `\n`) not yet flushed; callers may append to it. */
  pending: ByteBuilder;
  /** Appends a line of text (a newline is added) and flushes. */
  line(text: string): void;
  /** Sends on what is pending. */
  flush(): void;
  /** Undefined when there is room; otherwise settles when the backlog is written. */
  ready(): Promise<void> | undefined;
  /** Settles when everything so far has been written. */
  drained(): Promise<void>;
}

/**
 * Buffered output that never blocks its caller: text is appended to one buffer
 * while the other is being written, then they swap, so a burst of lines costs a
 * few large writes and no copies. Past `highWater` pending bytes, `ready()`
 * returns a promise: callers that await it push back instead of growing memory.
 *
 * @example
 * ```ts
 * import { OutputBuffer } from "./console.ts";
 * import assert from "node:assert/strict";
 *
 * const chunks: string[] = [];
 * const out = new OutputBuffer({
 *   write: (p: Uint8Array) => Promise.resolve(chunks.push(new TextDecoder().decode(p)) && p.length),
 * });
 * out.line("uno");
 * out.line("dos");
 * await out.drained();
 * assert.equal(chunks.join(""), "uno\ndos\n");
 * ```
 */
export class OutputBuffer implements LineOutput {
  /** Bytes appended since the last write began; callers may append to it directly. */
  pending = new ByteBuilder(64 * 1024);
  /** The buffer being written, kept to swap back in. */
  #spare = new ByteBuilder(64 * 1024);
  readonly #out: Output;
  readonly #highWater: number;
  #writing = false;
  /** Set when a write failed (say, a closed pipe): output is dropped from then on. */
  #failed: unknown = null;
  /** Waiting for the pending bytes to be written. */
  #waiters: (() => void)[] = [];

  /** Output to `out`; `ready()` pushes back past `highWater` pending bytes. */
  constructor(out: Output, highWater = 1024 * 1024) {
    this.#out = out;
    this.#highWater = highWater;
  }

  /** The error that stopped output, or null. */
  get failed(): unknown {
    return this.#failed;
  }

  /** Appends a line of text (a newline is added) and schedules a write. */
  line(text: string): void {
    this.pending.appendText(text);
    this.pending.appendByte(LF);
    this.flush();
  }

  /** Starts writing what is pending, unless a write is under way (it will pick it up). */
  flush(): void {
    if (this.#writing || this.pending.length === 0) return;
    this.#writing = true;
    void this.#writeLoop();
  }

  /** Undefined when there is room; otherwise settles once the backlog is written. */
  ready(): Promise<void> | undefined {
    return this.pending.length > this.#highWater && this.#failed === null
      ? this.drained()
      : undefined;
  }

  /** Settles when everything appended so far has been written (or output failed). */
  drained(): Promise<void> {
    this.flush();
    if (!this.#writing) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push(resolve);
    return promise;
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.pending.length > 0 && this.#failed === null) {
        const data = this.pending;
        this.pending = this.#spare;
        this.#spare = data;
        let written = 0;
        while (written < data.length) {
          written += await this.#out.write(data.bytes.subarray(written, data.length));
        }
        data.clear();
      }
    } catch (error) {
      // A closed pipe or terminal: nobody is reading, so output stops here.
      this.#failed = error;
    } finally {
      if (this.#failed !== null) this.pending.clear();
      this.#writing = false;
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const wake of waiters) wake();
    }
  }
}

/**
 * Reads `input` to its end, handing each line to `sink` (bytes, without the
 * line ending) and awaiting the promise `flush` returns after each chunk.
 */
export async function readLines(
  input: Input,
  sink: LineSink & { flush?(): void | Promise<void> },
  maxLine = 1024 * 1024,
): Promise<void> {
  const lines = new LineDecoder({ maxLine });
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    const n = await input.read(buffer);
    if (n === null) break;
    lines.push(buffer.subarray(0, n), sink);
    await sink.flush?.();
  }
  lines.end(sink);
  await sink.flush?.();
}

/**
 * Shows what a server sends: each line made safe for the terminal (see
 * `sanitize()` in text.ts) and written through an {@linkcode OutputBuffer}.
 */
export class ClientScreen implements ReadSink {
  readonly #out: LineOutput;

  /** A screen writing to `out`. */
  constructor(out: LineOutput) {
    this.#out = out;
  }

  /** Appends one line from the server. */
  line(buf: Uint8Array, start: number, end: number): void {
    this.#out.pending.appendSanitized(buf, start, end);
    this.#out.pending.appendByte(LF);
  }

  /** The server sent a line too long to show. */
  overlong(): void {
    this.#out.line("charla: (an over-long line from the server was dropped)");
  }

  /** Writes what the last read brought; pushes back while the terminal is behind. */
  flush(): Promise<void> | undefined {
    this.#out.flush();
    return this.#out.ready();
  }
}

/** Local time as `HH:MM:SS`, recomputed at most once a second. */
class Clock {
  /** Until when (Date.now() time) the cached stamp is right. */
  #until = 0;
  #text = "";
  #bytes = new Uint8Array();
  /** The current time stamp, with a trailing space. */
  stamp(): string {
    this.#update();
    return this.#text;
  }
  /** The same, as UTF-8 bytes: for the per-line path. */
  stampBytes(): Uint8Array {
    this.#update();
    return this.#bytes;
  }
  #update(): void {
    const now = Date.now();
    if (now < this.#until) return;
    const d = new Date(now);
    this.#until = now - d.getMilliseconds() + 1000;
    this.#text = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} `;
    this.#bytes = encoder.encode(this.#text);
  }
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** Options for {@linkcode ServerConsole}. */
export interface ServerConsoleOptions {
  /**
   * One JSON object per line for every event, instead of the human format.
   * @default {false}
   */
  json?: boolean;
}

/**
 * The operator's view of a server: a {@linkcode ServerLog} that writes each
 * event and message as a line, with a time stamp and who did it.
 *
 * @example
 * ```ts
 * import { ServerConsole, OutputBuffer } from "./console.ts";
 * import assert from "node:assert/strict";
 *
 * let text = "";
 * const out = new OutputBuffer({
 *   write: (p: Uint8Array) => Promise.resolve((text += new TextDecoder().decode(p)).length && p.length),
 * });
 * const log = new ServerConsole(out, { json: true });
 * const peer = { id: 1, name: "ana", address: "127.0.0.1:50000", since: new Date() };
 * log.message(peer, new TextEncoder().encode("hola"), 0, 4);
 * await out.drained();
 * const event = JSON.parse(text);
 * assert.equal(event.event, "message");
 * assert.equal(event.text, "hola");
 * ```
 */
export class ServerConsole implements ServerLog {
  /** Where lines go. */
  readonly out: LineOutput;
  readonly #json: boolean;
  readonly #clock = new Clock();
  /** `[#id name] ` of the last peer that sent a message, cached as bytes. */
  #tagPeer: PeerInfo | null = null;
  #tagName = "";
  #tag: Uint8Array = new Uint8Array();

  /** A console writing to `out`. */
  constructor(out: LineOutput, options: ServerConsoleOptions = {}) {
    this.out = out;
    this.#json = options.json ?? false;
  }

  /** Writes one event. */
  event(event: ServerEvent): void {
    if (this.#json) {
      this.out.line(JSON.stringify(toJson(event)));
    } else {
      // The listening line has no time stamp, so scripts can read the port.
      const stamp = event.event === "listening" ? "" : this.#clock.stamp();
      this.out.line(stamp + describe(event));
    }
  }

  /** Writes one message line: `HH:MM:SS [#id name] text`. */
  message(peer: PeerInfo, text: Uint8Array, start: number, end: number): void {
    if (this.#json) {
      const line = decoder.decode(text.subarray(start, end));
      this.out.line(
        JSON.stringify({
          time: new Date().toISOString(),
          event: "message",
          ...who(peer),
          text: line,
        }),
      );
      return;
    }
    if (peer !== this.#tagPeer || peer.name !== this.#tagName) {
      this.#tagPeer = peer;
      this.#tagName = peer.name;
      this.#tag = encoder.encode(`[#${peer.id} ${peer.name}] `);
    }
    const pending = this.out.pending;
    pending.append(this.#clock.stampBytes());
    pending.append(this.#tag);
    pending.append(text, start, end);
    pending.appendByte(LF);
    this.out.flush();
  }

  /** Undefined while the output keeps up. */
  ready(): Promise<void> | undefined {
    return this.out.ready();
  }

  /** Writes a reply to an operator command: plain lines, no time stamp. */
  reply(text: string): void {
    if (this.#json) {
      this.out.line(JSON.stringify({ time: new Date().toISOString(), event: "reply", text }));
    } else this.out.line(text);
  }
}

/** `#7 ana`. */
function label(peer: PeerInfo | null): string {
  return peer === null ? "server" : `#${peer.id} ${peer.name}`;
}

/** An event in the human format, without its time stamp. */
function describe(event: ServerEvent): string {
  switch (event.event) {
    case "listening":
      return `listening on ${event.address}`;
    case "join":
      return `* ${label(event.peer)} joined from ${event.peer.address}`;
    case "leave":
      return `* #${event.peer.id} ${describeLeave(event.peer.name, event.reason)}`;
    case "nick":
      return `* #${event.peer.id} ${event.from} is now ${event.peer.name}`;
    case "action":
      return `* ${label(event.peer)} ${event.text}`;
    case "private":
      return `[${label(event.from)} -> ${label(event.to)}] ${event.text}`;
    case "broadcast":
      return `[server] ${event.text}`;
    case "kick":
      return `* ${label(event.peer)} kicked${event.reason === "" ? "" : `: ${event.reason}`}`;
    case "refused":
      return `! refused ${event.address}: ${event.reason}`;
    case "error":
      return event.peer === null
        ? `! ${event.message}`
        : `! ${label(event.peer)}: ${event.message}`;
    case "shutdown":
      return `* ${event.reason}`;
  }
}

function who(peer: PeerInfo): { id: number; name: string; address: string } {
  return { id: peer.id, name: peer.name, address: peer.address };
}

/** An event as a flat JSON object with an ISO time. */
function toJson(event: ServerEvent): Record<string, unknown> {
  const time = new Date().toISOString();
  switch (event.event) {
    case "join":
    case "leave":
    case "nick":
    case "action":
    case "kick": {
      const { peer, ...rest } = event;
      return { time, ...rest, ...who(peer) };
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

/** What a {@linkcode Terminal} needs of the process; tests pass their own. */
export interface TerminalIo {
  /** Key bytes, read raw. */
  input: Input;
  /** The screen. */
  output: Output;
  /** Enters (true) or leaves (false) raw mode. */
  setRaw(raw: boolean): void;
  /** The terminal's width, in columns. */
  columns(): number;
  /** Calls `callback` when the window is resized; returns what stops that. */
  onResize(callback: () => void): () => void;
}

/**
 * The process's terminal, when both stdin and stdout are one; null otherwise
 * (a pipe, a file, a script), and then nothing but plain lines is used.
 */
export function processTerminal(): TerminalIo | null {
  if (!Deno.stdin.isTerminal() || !Deno.stdout.isTerminal()) return null;
  return {
    input: Deno.stdin,
    output: Deno.stdout,
    setRaw: (raw) => Deno.stdin.setRaw(raw),
    columns: () => Deno.consoleSize().columns,
    onResize(callback) {
      if (Deno.build.os === "windows") return () => {};
      Deno.addSignalListener("SIGWINCH", callback);
      return () => Deno.removeSignalListener("SIGWINCH", callback);
    },
  };
}

/** What a {@linkcode Terminal} reports of the keys typed. */
export interface TerminalHandler {
  /** Enter was pressed on this line. */
  line(text: string): void;
  /** Ctrl-C. */
  interrupt(): void;
  /** Ctrl-D on an empty line (or the terminal went away). */
  eof(): void;
}

/** Options for {@linkcode Terminal}. */
export interface TerminalOptions {
  /** @default {"> "} */
  prompt?: string;
  /** Styles each line written through {@linkcode Terminal.out}. @default the line as it is */
  style?: (line: string) => string;
  /**
   * What Tab completes (see line_editor.ts); the words a second Tab lists are
   * printed above the prompt. @default Tab does nothing
   */
  complete?: Completer;
}

/**
 * A chat on a terminal: the user edits a line at a prompt (see line_editor.ts)
 * while incoming lines are printed above it, so a message arriving mid-typing
 * never tears the typed line apart. Lines are printed in batches, one prompt
 * redraw per batch, so a flood costs a redraw per read, not per line.
 *
 * Raw mode is left on every way out: `close()`, and, as a last resort, the
 * process's `unload` event.
 */
export class Terminal {
  /** The line editor: its state is what is on screen. */
  readonly editor: LineEditor;
  /** Where content lines go, to be styled and printed above the prompt. */
  readonly out: LineOutput;
  readonly #io: TerminalIo;
  /** Everything written to the screen, in order. */
  readonly #screen: OutputBuffer;
  readonly #style: (line: string) => string;
  /** Styled lines waiting to be printed above the prompt. */
  #above: string[] = [];
  #renderScheduled = false;
  #stopResize: (() => void) | null = null;
  #open = false;
  #closed = false;
  readonly #restore = () => {
    try {
      this.#io.setRaw(false);
    } catch {
      // Not a terminal any more.
    }
  };

  /** A terminal on `io`; nothing changes on screen until {@linkcode start}. */
  constructor(io: TerminalIo, options: TerminalOptions = {}) {
    this.#io = io;
    this.#screen = new OutputBuffer(io.output);
    this.#style = options.style ?? ((line) => line);
    this.editor = new LineEditor({
      prompt: options.prompt ?? "> ",
      columns: io.columns(),
      complete: options.complete,
    });
    this.out = new TerminalLines(this);
  }

  /** Prints a line (already styled) above the prompt. */
  print(line: string): void {
    this.#above.push(line);
    this.#scheduleRender();
  }

  /** Content lines from {@linkcode out}, styled. */
  printLines(lines: string[]): void {
    for (const line of lines) this.#above.push(this.#style(line));
    this.#scheduleRender();
  }

  /** Settles when everything printed so far is on screen. */
  drained(): Promise<void> {
    this.#render();
    return this.#screen.drained();
  }

  /** Undefined while the screen keeps up. */
  ready(): Promise<void> | undefined {
    return this.#screen.ready();
  }

  /**
   * Enters raw mode, draws the prompt, and handles keys until input ends or
   * {@linkcode close} is called.
   */
  async start(handler: TerminalHandler): Promise<void> {
    this.#io.setRaw(true);
    this.#open = true;
    globalThis.addEventListener("unload", this.#restore);
    this.#stopResize = this.#io.onResize(() => this.#write(this.editor.resize(this.#io.columns())));
    this.#write(this.editor.render());
    const buffer = new Uint8Array(1024);
    while (!this.#closed) {
      const n = await this.#io.input.read(buffer);
      if (this.#closed) return;
      if (n === null) return handler.eof();
      this.#render(); // lines already waiting go first, then the key's effect
      const { write, events } = this.editor.feed(buffer.subarray(0, n));
      this.#write(write);
      for (const event of events) {
        if (event.type === "submit") handler.line(event.line);
        else if (event.type === "interrupt") handler.interrupt();
        else if (event.type === "completions") this.print(event.words.join("  "));
        else handler.eof();
      }
    }
  }

  /** Erases the prompt, writes what is pending, and leaves raw mode. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#render(); // lines still waiting go above the prompt, as usual...
    this.#closed = true;
    if (this.#open) this.#write(this.editor.clear()); // ...then the prompt goes
    await this.#screen.drained();
    this.#stopResize?.();
    if (this.#open) {
      this.#restore();
      globalThis.removeEventListener("unload", this.#restore);
    }
  }

  #write(text: string): void {
    if (text === "") return;
    this.#screen.pending.appendText(text);
    this.#screen.flush();
  }

  #scheduleRender(): void {
    if (this.#renderScheduled) return;
    this.#renderScheduled = true;
    // Lines that arrive in the same turn (one read's worth) share one redraw.
    queueMicrotask(() => this.#render());
  }

  #render(): void {
    this.#renderScheduled = false;
    if (this.#above.length === 0) return;
    const lines = this.#above;
    this.#above = [];
    if (!this.#open || this.#closed) {
      // No prompt on screen: plain lines (raw mode is off, but \r\n is right either way).
      this.#write(lines.map((l) => `${l}\r\n`).join(""));
      return;
    }
    let text = this.editor.clear();
    for (const line of lines) text += this.editor.printAbove(line);
    this.#write(text + this.editor.render());
  }
}

/** A terminal's {@linkcode LineOutput}: whole lines are handed to the terminal to print. */
class TerminalLines implements LineOutput {
  pending = new ByteBuilder(4096);
  readonly #terminal: Terminal;

  constructor(terminal: Terminal) {
    this.#terminal = terminal;
  }

  line(text: string): void {
    this.pending.appendText(text);
    this.pending.appendByte(LF);
    this.flush();
  }

  flush(): void {
    const pending = this.pending;
    const end = pending.bytes.subarray(0, pending.length).lastIndexOf(LF);
    if (end < 0) return;
    const text = decoder.decode(pending.bytes.subarray(0, end));
    // Keep a partial line, if any, for the next flush.
    pending.bytes.copyWithin(0, end + 1, pending.length);
    pending.length -= end + 1;
    this.#terminal.printLines(text.split("\n"));
  }

  ready(): Promise<void> | undefined {
    return this.#terminal.ready();
  }

  drained(): Promise<void> {
    this.flush();
    return this.#terminal.drained();
  }
}
