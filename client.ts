#!/usr/bin/env -S deno run --allow-net
/**
 * charla client: prints what the server sends while sending what you type.
 *
 * ```sh
 * deno run --allow-net client.ts               # connects to 127.0.0.1:5000
 * deno run --allow-net client.ts example.org 6000 --name ana
 * printf 'hola\n' | deno run --allow-net client.ts   # like nc -N
 * ```
 *
 * Run with `--help` for every option.
 *
 * @module
 */

import { parseFingerprint } from "./lib/net/tls_pin.ts";
import { ChatClient, ConnectError, type ConnectTarget } from "./lib/client/chat_client.ts";
import {
  conflicts,
  parseFlags,
  parsePort,
  parseSeconds,
  problemLine,
  requires,
  UsageError,
  usageText,
  whyUnreadable,
} from "./lib/cli.ts";
import { showEvent } from "./lib/client/render.ts";
import { ServerReader, type ServerView } from "./lib/client/server_reader.ts";
import type { Who } from "./lib/core/messages.ts";
import { sanitizeText } from "./lib/wire/text.ts";
import { OutputBuffer, readLines } from "./lib/terminal/output.ts";
import { processTerminal, Terminal } from "./lib/terminal/terminal.ts";
import { checkName } from "./lib/core/names.ts";
import { Styler, terminalColorDepth, timestamp } from "./lib/terminal/style.ts";
import { chatCompleter } from "./lib/terminal/line_editor.ts";
import { commandNames } from "./lib/core/commands.ts";
import { VERSION } from "./lib/version.ts";

const USAGE = `charla client ${VERSION}: chat with a charla server (or any line-based TCP peer)

Usage: deno run --allow-net client.ts [options] [host] [port]

Where to connect:
  -H, --host <addr>     server address (default 127.0.0.1); also the first argument
  -p, --port <n>        server port (default 5000); also the second argument
      --unix <path>     connect to a Unix socket instead (needs --allow-read --allow-write)
      --tls             speak TLS, checking the server's certificate and name
      --ca <pem>        trust this certificate authority (needs --allow-read)
      --fingerprint <sha256>
                        speak TLS with a server whose certificate has this
                        fingerprint, as server.ts --tls-self-signed prints it
      --timeout <s>     give up connecting after this long (default 10)

Chatting:
  -n, --name <nick>     ask for this name on connecting
      --reconnect       when the connection drops, connect again (0.5 s doubling
                        to 30 s) and send the lines typed meanwhile; not after
                        being kicked, banned or refused
      --timestamps      show the time (HH:MM) before each line
      --password-file <file>
                        the server's password, for a server that asks for one
                        (needs --allow-read); without it, asked for on a
                        terminal, echoing nothing

  -h, --help            show this help
  -V, --version         show the version

Lines you type are sent as they are; /help asks the server for its commands.
When input ends (Ctrl-D, or the end of a pipe) the client finishes sending,
half-closes, and prints what arrives until the server closes (like nc -N).

Exit codes: 0 the server closed (or you quit); 1 the connection failed or was
lost, or typed lines were not sent; 2 bad flags; 3 the server refused or
removed you (access denied, server full, banned, kicked, wrong or no
password); 130 interrupted.

Examples:
  deno task client
  deno run --allow-net client.ts 127.0.0.1 5000 --name ana
  deno run --allow-net --allow-read client.ts --tls --ca ca.pem -H localhost -p 5443`;

const OPTIONS = {
  host: { type: "string", short: "H" },
  port: { type: "string", short: "p" },
  unix: { type: "string" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  fingerprint: { type: "string" },
  timeout: { type: "string" },
  name: { type: "string", short: "n" },
  reconnect: { type: "boolean" },
  timestamps: { type: "boolean" },
  "password-file": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** What the command line asked for. */
interface ClientArgs {
  help: boolean;
  version: boolean;
  target: ConnectTarget;
  caFile: string | undefined;
  timeout: number;
  name: string | undefined;
  reconnect: boolean;
  timestamps: boolean;
  passwordFile: string | undefined;
}

function parseClientArgs(args: string[]): ClientArgs {
  const { values: v, positionals } = parseFlags(args, OPTIONS);
  if (positionals.length > 2) throw new UsageError(`unexpected argument "${positionals[2]}"`);
  const [hostArg, portArg] = positionals;
  if (hostArg !== undefined && v.host !== undefined) {
    throw new UsageError("give the host once: as an argument or with --host");
  }
  if (portArg !== undefined && v.port !== undefined) {
    throw new UsageError("give the port once: as an argument or with --port");
  }
  const name = v.name;
  if (name !== undefined) {
    const problem = checkName(name, -1);
    if (problem !== null) throw new UsageError(`invalid --name "${name}": ${problem}`);
  }
  requires(v, "ca", "tls");
  conflicts(v, [
    ["unix", "tls"],
    ["unix", "host"],
    ["unix", "port"],
    ["unix", "fingerprint"],
    ["ca", "fingerprint"],
  ]);
  if (v.fingerprint !== undefined && parseFingerprint(v.fingerprint) === null) {
    throw new UsageError(
      `invalid --fingerprint "${v.fingerprint}": must be 32 bytes in hex (SHA-256), as AB:CD:…`,
    );
  }
  const port = portArg ?? v.port;
  return {
    help: v.help ?? false,
    version: v.version ?? false,
    target: {
      hostname: hostArg ?? v.host ?? "127.0.0.1",
      port: port === undefined
        ? 5000
        : parsePort(port, portArg === undefined ? "--port" : "port", { min: 1 }),
      path: v.unix,
      tls: (v.tls ?? false) || v.fingerprint !== undefined,
      fingerprint: v.fingerprint,
    },
    caFile: v.ca,
    timeout: v.timeout === undefined ? 10_000 : parseSeconds(v.timeout, "--timeout", 0.001),
    name,
    reconnect: v.reconnect ?? false,
    timestamps: v.timestamps ?? false,
    passwordFile: v["password-file"],
  };
}

/** Runs the client with these command-line arguments; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  const stderr = new OutputBuffer(Deno.stderr);
  const fail = async (text: string, code: number) => {
    stderr.line(text);
    await stderr.drained();
    return code;
  };
  let options: ClientArgs;
  try {
    options = parseClientArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return await fail(usageText("client", error), 2);
  }
  const stdout = new OutputBuffer(Deno.stdout);
  if (options.help || options.version) {
    stdout.line(options.help ? USAGE : `charla client ${VERSION}`);
    await stdout.drained();
    return 0;
  }
  if (options.caFile !== undefined) {
    try {
      options.target.caCerts = [await Deno.readTextFile(options.caFile)];
    } catch (error) {
      const why = error instanceof Deno.errors.NotCapable
        ? "reading it needs --allow-read"
        : (error as Error).message;
      return await fail(problemLine("client", `cannot read --ca "${options.caFile}": ${why}`), 1);
    }
  }

  let password: string | null = null;
  if (options.passwordFile !== undefined) {
    try {
      password = (await Deno.readTextFile(options.passwordFile)).replace(/\r?\n$/, "");
    } catch (error) {
      const why = whyUnreadable(error);
      return await fail(
        problemLine("client", `cannot read --password-file "${options.passwordFile}": ${why}`),
        1,
      );
    }
  }

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);

  // On a terminal: a prompt with line editing, incoming lines above it, colours.
  // Otherwise (a pipe, a script): plain lines in and out, no escape codes.
  const io = processTerminal();
  const styler = new Styler({ color: io !== null && !Deno.noColor, colors: terminalColorDepth() });
  const terminal = io === null ? null : new Terminal(io, {
    complete: chatCompleter(() => styler.palette.present(), commandNames(true)),
  });
  /** Where the server's lines go: above the prompt, or stdout. */
  const out = terminal?.out ?? stdout;
  /** What the client prints itself (status, problems): above the prompt, or to stderr. */
  const say = terminal === null
    ? (text: string) => stderr.line(`charla: ${text}`)
    : (text: string) => terminal.print(styler.status(`charla: ${text}`));

  /** Who we are on the server, once a charla server said so: to mark our own lines. */
  let me: Who | null = null;
  const view: ServerView = {
    event(event) {
      if (event.type === "welcome" || event.type === "renamed") me = event.you;
      let lines: string[];
      try {
        lines = showEvent(styler, event, me);
      } catch {
        // A server that sends JSON of the wrong shape: show what it sent.
        lines = [sanitizeText(JSON.stringify(event))];
      }
      const stamp = options.timestamps
        ? timestamp(new Date("time" in event ? event.time : Date.now()), styler.color)
        : "";
      for (const line of lines) out.line(stamp + line);
    },
    text(line) {
      const stamp = options.timestamps ? timestamp(new Date(), styler.color) : "";
      out.line(stamp + sanitizeText(line));
    },
    overlong() {
      say("an over-long line from the server was dropped");
    },
    flush() {
      out.flush();
      return out.ready();
    },
  };

  /**
   * The password, when the server asks: from --password-file, else typed at
   * the terminal once (and kept for reconnecting); none without either.
   */
  const askPassword = async (): Promise<string | null> => {
    if (password !== null) return password;
    if (terminal === null) {
      say("the server needs a password: give it with --password-file <file>");
      return null;
    }
    password = await terminal.askSecret("password: ");
    if (password === null) say("no password given");
    return password;
  };

  const encoder = new TextEncoder();
  const client = new ChatClient(options.target, {
    open: (send, close) => new ServerReader(view, send, { close, password: askPassword }),
    onStatus: say,
    onResent: (count) =>
      say(`sent ${count} line${count === 1 ? "" : "s"} typed while disconnected`),
    reconnect: options.reconnect,
    timeout: options.timeout,
    signal: stop.signal,
    greeting: options.name === undefined ? undefined : encoder.encode(`/nick ${options.name}\n`),
  });
  const send = (line: Uint8Array) => {
    if (!client.send(line)) say("not connected and too many lines waiting: line dropped");
  };

  /** Set when the user pressed Ctrl-C on the terminal: a normal way to leave. */
  let quitByKey = false;
  if (terminal !== null) {
    void terminal.start({
      line(text) {
        const name = me?.name ?? "you";
        terminal.print(client.connected ? styler.sent(text, name) : styler.queued(text, name));
        send(encoder.encode(`${text}\n`));
      },
      interrupt() {
        quitByKey = true;
        stop.abort();
      },
      eof: () => void client.endInput(),
    }).catch((error) => say(`cannot read the terminal: ${(error as Error).message}`));
  } else {
    // Typed lines go out as they come, whatever the server is doing: this loop
    // and the client's read loop never wait for each other.
    void readLines(Deno.stdin, {
      line(buf, start, end) {
        const line = new Uint8Array(end - start + 1);
        line.set(buf.subarray(start, end));
        line[end - start] = 0x0a;
        send(line);
      },
      overlong: () => say("line too long: not sent"),
      flush: () => client.ready(),
    }).then(
      () => client.endInput(),
      (error) => say(`cannot read input: ${(error as Error).message}`),
    );
  }

  let code: number;
  try {
    const result = await client.run();
    if (result.unsent > 0) {
      say(`${result.unsent} typed line${result.unsent === 1 ? " was" : "s were"} not sent`);
    }
    const refused = result.farewell !== undefined &&
      ["denied", "full", "banned", "kicked", "password"].includes(result.farewell.reason);
    code = result.end === "stopped"
      ? (quitByKey ? 0 : 130)
      : refused
      ? 3
      : result.end === "lost" || result.unsent > 0
      ? 1
      : 0;
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    const line = problemLine("client", error.message);
    if (terminal === null) stderr.line(line);
    else terminal.print(styler.error(line));
    code = 1;
  } finally {
    // The terminal is left as it was found, whatever happened above.
    await terminal?.close();
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
  await stdout.drained();
  await stderr.drained();
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
