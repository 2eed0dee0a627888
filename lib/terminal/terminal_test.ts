import assert from "node:assert/strict";
import { OutputBuffer } from "./output.ts";
import { ServerConsole } from "./server_console.ts";
import { Terminal, type TerminalHandler, type TerminalIo } from "./terminal.ts";
import { Screen } from "./_test_screen.ts";

const encoder = new TextEncoder();

/** A terminal for tests: keys are typed with `type()`, the screen is emulated. */
class FakeTerminal implements TerminalIo {
  readonly screen: Screen;
  readonly rawCalls: boolean[] = [];
  width: number;
  #keys: Uint8Array[] = [];
  #waiting: ((n: number | null) => void) | null = null;
  #target: Uint8Array | null = null;
  #resize: (() => void) | null = null;
  #ended = false;
  /** Settled by the terminal's next read: it has handled what it was given. */
  #nextRead = Promise.withResolvers<void>();

  constructor(columns: number) {
    this.width = columns;
    this.screen = new Screen(columns);
  }

  input = {
    read: (p: Uint8Array): Promise<number | null> => {
      this.#nextRead.resolve();
      this.#nextRead = Promise.withResolvers();
      if (this.#keys.length > 0) return Promise.resolve(this.#take(p));
      if (this.#ended) return Promise.resolve(null);
      this.#target = p;
      return new Promise((resolve) => this.#waiting = resolve);
    },
  };

  output = {
    write: (p: Uint8Array): Promise<number> => {
      this.screen.write(new TextDecoder().decode(p));
      return Promise.resolve(p.length);
    },
  };

  setRaw(raw: boolean): void {
    this.rawCalls.push(raw);
  }

  columns(): number {
    return this.width;
  }

  onResize(callback: () => void): () => void {
    this.#resize = callback;
    return () => this.#resize = null;
  }

  /** Types keys; resolves when the terminal asks for more, having handled them. */
  async type(keys: string): Promise<void> {
    const handled = this.#nextRead.promise;
    this.press(keys);
    await handled;
  }

  /** Types keys without waiting for them to be handled. */
  press(keys: string): void {
    this.#keys.push(encoder.encode(keys));
    this.#deliver();
  }

  /** The terminal goes away (end of input). */
  end(): void {
    this.#ended = true;
    this.#deliver();
  }

  resizeTo(columns: number): void {
    this.width = columns;
    this.screen.resize(columns);
    this.#resize?.();
  }

  #deliver(): void {
    const resolve = this.#waiting;
    if (resolve === null) return;
    this.#waiting = null;
    resolve(this.#keys.length > 0 ? this.#take(this.#target!) : null);
  }

  #take(p: Uint8Array): number {
    const chunk = this.#keys.shift()!;
    p.set(chunk);
    return chunk.length;
  }
}

/** A handler that records what the terminal reported. */
function recorder(): TerminalHandler & { events: string[] } {
  const events: string[] = [];
  return {
    events,
    line: (text) => events.push(`line:${text}`),
    interrupt: () => events.push("interrupt"),
    eof: () => events.push("eof"),
  };
}

Deno.test("Terminal prints incoming lines above a half-typed line, which stays intact", async () => {
  const io = new FakeTerminal(40);
  const terminal = new Terminal(io);
  const running = terminal.start(recorder());
  await io.type("hola, ¿qué ta");
  terminal.out.line("<bea> primero");
  terminal.out.line("<bea> segundo 你好");
  await terminal.drained();
  assert.deepEqual(io.screen.lines(), ["<bea> primero", "<bea> segundo 你好", "> hola, ¿qué ta"]);
  assert.deepEqual(io.screen.cursor(), [2, 15]);
  await terminal.close();
  io.end();
  await running;
});

Deno.test("Terminal reports Enter, Ctrl-C and Ctrl-D, and leaves raw mode on close", async () => {
  const io = new FakeTerminal(40);
  const terminal = new Terminal(io);
  const handler = recorder();
  const running = terminal.start(handler);
  await io.type("uno\r");
  await io.type("\x03");
  await io.type("\x04");
  assert.deepEqual(handler.events, ["line:uno", "interrupt", "eof"]);
  assert.deepEqual(io.rawCalls, [true]);
  await terminal.close();
  assert.deepEqual(io.rawCalls, [true, false]);
  assert.deepEqual(io.screen.lines(), []); // the prompt is erased
  io.press("x"); // keys after close are not handled: the loop just ends
  await running;
  assert.deepEqual(handler.events, ["line:uno", "interrupt", "eof"]);
});

Deno.test("Terminal completes on Tab and prints the words a second Tab lists above the prompt", async () => {
  const io = new FakeTerminal(40);
  const names = ["carla", "carlos", "bea"];
  const terminal = new Terminal(io, {
    complete: (word) => names.filter((name) => name.startsWith(word)),
  });
  const handler = recorder();
  const running = terminal.start(handler);
  await io.type("hola c\t");
  await io.type("\t");
  await terminal.drained();
  assert.deepEqual(io.screen.lines(), ["carla  carlos", "> hola carl"]);
  assert.deepEqual(io.screen.cursor(), [1, 11]);
  await io.type("a\t\r");
  assert.deepEqual(handler.events, ["line:hola carla "], "a list is not the end of input");
  await terminal.close();
  io.end();
  await running;
});

Deno.test("Terminal.close() prints lines still waiting, then erases the prompt", async () => {
  const io = new FakeTerminal(60);
  const terminal = new Terminal(io);
  const running = terminal.start(recorder());
  await io.type("a medio escrib");
  terminal.print("cannot connect to 127.0.0.1:5999: connection refused");
  await terminal.close();
  assert.deepEqual(io.screen.lines(), ["cannot connect to 127.0.0.1:5999: connection refused"]);
  assert.deepEqual(io.screen.cursor(), [1, 0]);
  io.end();
  await running;
});

Deno.test("Terminal reports the end of input as eof", async () => {
  const io = new FakeTerminal(40);
  const terminal = new Terminal(io);
  const handler = recorder();
  const running = terminal.start(handler);
  io.end();
  await running;
  assert.deepEqual(handler.events, ["eof"]);
  await terminal.close();
});

Deno.test("Terminal redraws a wrapped line for a new width", async () => {
  const io = new FakeTerminal(20);
  const terminal = new Terminal(io);
  const running = terminal.start(recorder());
  await io.type("una línea que no cabe en veinte");
  assert.deepEqual(io.screen.lines(), ["> una línea que no c", "abe en veinte"]);
  io.resizeTo(40);
  await terminal.drained();
  assert.deepEqual(io.screen.lines(), ["> una línea que no cabe en veinte"]);
  await terminal.close();
  io.end();
  await running;
});

Deno.test("Terminal styles the lines of its output, one redraw per batch", async () => {
  const io = new FakeTerminal(40);
  let writes = 0;
  const write = io.output.write;
  io.output.write = (p) => {
    writes++;
    return write(p);
  };
  const terminal = new Terminal(io, { style: (line) => line.toUpperCase() });
  const running = terminal.start(recorder());
  await terminal.drained();
  const before = writes;
  for (let i = 0; i < 50; i++) terminal.out.line(`línea ${i}`);
  await terminal.drained();
  assert.equal(io.screen.lines().at(-2), "LÍNEA 49");
  assert.equal(writes - before, 1);
  await terminal.close();
  io.end();
  await running;
});

Deno.test("Terminal.askSecret() shows nothing of what is typed, not even its length, and gives it back", async () => {
  const io = new FakeTerminal(40);
  const terminal = new Terminal(io);
  const handler = recorder();
  const running = terminal.start(handler);
  await io.type("a medio");
  const secret = terminal.askSecret("password: ");
  await terminal.drained();
  assert.deepEqual(io.screen.lines(), ["password:"]);
  assert.deepEqual(io.screen.cursor(), [0, 10]);
  await io.type("s3cre");
  await io.type("tX\x7f"); // Backspace
  terminal.out.line("* bea joined"); // lines that arrive meanwhile go above
  await io.type("ñ\x7f");
  await terminal.drained();
  assert.deepEqual(io.screen.lines(), ["* bea joined", "password:"]);
  assert.deepEqual(io.screen.cursor(), [1, 10]);
  await io.type("\r");
  assert.equal(await secret, "s3cret");
  // The line being typed before is back, and the secret went nowhere else.
  await terminal.drained();
  assert.deepEqual(io.screen.lines(), ["* bea joined", "> a medio"]);
  assert.deepEqual(handler.events, []);
  await io.type("\x1b[A"); // Up: the secret is not in the history
  await terminal.drained();
  assert.deepEqual(io.screen.lines(), ["* bea joined", "> a medio"]);
  await terminal.close();
  io.end();
  await running;
});

Deno.test("Terminal.askSecret() gives null on Ctrl-C (which also interrupts) and on Ctrl-D", async () => {
  const io = new FakeTerminal(40);
  const terminal = new Terminal(io);
  const handler = recorder();
  const running = terminal.start(handler);
  const first = terminal.askSecret("password: ");
  await io.type("abc\x03");
  assert.equal(await first, null);
  assert.deepEqual(handler.events, ["interrupt"]);
  const second = terminal.askSecret("password: ");
  await io.type("\x04");
  assert.equal(await second, null);
  assert.deepEqual(handler.events, ["interrupt"], "Ctrl-D gives up the secret, not the input");
  await terminal.close();
  io.end();
  await running;
  const unstarted = new Terminal(new FakeTerminal(40));
  assert.equal(await unstarted.askSecret("password: "), null);
});

Deno.test("ServerConsole writes plain lines without a terminal", async () => {
  let text = "";
  const out = new OutputBuffer({
    write: (p) => Promise.resolve((text += new TextDecoder().decode(p)).length && p.length),
  });
  const log = new ServerConsole(out);
  const peer = { id: 3, name: "ana", address: "127.0.0.1:5", since: new Date(), transport: "line" };
  log.event({ event: "listening", address: "127.0.0.1:5000", relay: true, transport: "line" });
  log.message("#lobby", peer, encoder.encode("hola"), 0, 4);
  log.event({ event: "leave", peer, reason: "too slow" });
  await out.drained();
  const lines = text.split("\n");
  assert.equal(lines[0], "listening on 127.0.0.1:5000");
  assert.match(lines[1], /^\d\d:\d\d:\d\d \[#lobby ana\] hola$/);
  assert.match(lines[2], /^\d\d:\d\d:\d\d \* #3 ana left \(too slow\)$/);
  assert.equal(text.indexOf("\x1b"), -1);
});
