/**
 * A chat on a terminal: raw mode, a prompt with line editing, and lines printed
 * above it. The only module that puts the terminal in raw mode.
 *
 * @module
 */

import { type Completer, LineEditor } from "./line_editor.ts";
import type { Input, LineOutput, Output } from "./output.ts";
import { OutputBuffer } from "./output.ts";
import { ByteBuilder } from "../wire/text.ts";

const LF = 0x0a;
const decoder = new TextDecoder();

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
  /**
   * A secret being asked for (see {@linkcode askSecret}): its prompt, the
   * bytes typed so far, and who waits for it. Null while the editor has the keys.
   */
  #secret: { prompt: string; typed: number[]; resolve: (text: string | null) => void } | null =
    null;
  /** The handler of {@linkcode start}, for Ctrl-C while a secret is asked for. */
  #handler: TerminalHandler | null = null;
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

  /**
   * Asks for a secret (a password) at its own prompt, echoing nothing of what
   * is typed, not even its length; Backspace and Ctrl-U edit it. Lines that
   * arrive meanwhile are printed above as usual. Resolves with the text on
   * Enter, or null on Ctrl-D, Ctrl-C (which also interrupts, as it would at the
   * chat prompt) or when the terminal is not started or goes away. The line
   * editor's prompt and typed line come back after; the secret is not in its
   * history.
   */
  askSecret(prompt: string): Promise<string | null> {
    if (!this.#open || this.#closed) return Promise.resolve(null);
    this.#secret?.resolve(null);
    const { promise, resolve } = Promise.withResolvers<string | null>();
    this.#render();
    this.#secret = { prompt, typed: [], resolve };
    this.#write(`${this.editor.clear()}${prompt}`);
    return promise;
  }

  /** Keys typed while a secret is asked for. */
  #secretKeys(bytes: Uint8Array): void {
    const secret = this.#secret!;
    const finish = (text: string | null) => {
      this.#secret = null;
      // The cursor is on the secret prompt's row: clear it, and the editor is back.
      this.#write(`\r\x1b[J${this.editor.render()}`);
      secret.resolve(text);
    };
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === 0x0d || b === 0x0a) {
        return finish(decoder.decode(Uint8Array.from(secret.typed)));
      } else if (b === 0x03) {
        finish(null);
        return this.#handler?.interrupt();
      } else if (b === 0x04) {
        return finish(null);
      } else if (b === 0x7f || b === 0x08) {
        // One character: drop UTF-8 continuation bytes, then the lead byte.
        while (secret.typed.length > 0 && (secret.typed[secret.typed.length - 1] & 0xc0) === 0x80) {
          secret.typed.pop();
        }
        secret.typed.pop();
      } else if (b === 0x15) {
        secret.typed.length = 0;
      } else if (b === 0x1b) {
        return; // an escape sequence (an arrow key): nothing to do with a secret
      } else if (b >= 0x20) {
        secret.typed.push(b);
      }
    }
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

  /** Bytes written to the screen so far. */
  get written(): number {
    return this.#screen.written;
  }

  /**
   * Enters raw mode, draws the prompt, and handles keys until input ends or
   * {@linkcode close} is called.
   */
  async start(handler: TerminalHandler): Promise<void> {
    this.#io.setRaw(true);
    this.#open = true;
    this.#handler = handler;
    globalThis.addEventListener("unload", this.#restore);
    this.#stopResize = this.#io.onResize(() => this.#write(this.editor.resize(this.#io.columns())));
    this.#write(this.editor.render());
    const buffer = new Uint8Array(1024);
    while (!this.#closed) {
      const n = await this.#io.input.read(buffer);
      if (this.#closed) return;
      if (n === null) {
        this.#secret?.resolve(null);
        this.#secret = null;
        return handler.eof();
      }
      this.#render(); // lines already waiting go first, then the key's effect
      if (this.#secret !== null) {
        this.#secretKeys(buffer.subarray(0, n));
        continue;
      }
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
    this.#secret?.resolve(null);
    if (this.#secret !== null && this.#open) this.#write("\r\x1b[J");
    this.#secret = null;
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
    if (this.#secret !== null) {
      // Above the secret's prompt, which shows nothing typed: redraw it as it was.
      this.#write(`\r\x1b[J${lines.map((l) => `${l}\r\n`).join("")}${this.#secret.prompt}`);
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

  get written(): number {
    return this.#terminal.written;
  }

  drained(): Promise<void> {
    this.flush();
    return this.#terminal.drained();
  }
}
