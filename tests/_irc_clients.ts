/**
 * Real IRC clients, driven from Deno tests: `ii`, `sic`, `weechat-headless`
 * and `irssi` (under tmux). Each driver connects to 127.0.0.1:<port> with a
 * nick, joins channels, sends messages, actions (`/me`) and private messages,
 * and records what the client itself shows or logs as {@linkcode ClientLine}s
 * a test can wait for.
 *
 * Nothing here sleeps or polls. File-based clients (ii's `out` files, WeeChat's
 * and irssi's logs) are followed through inotify (`inotifywait`, see
 * the FolderTail class below for why not `Deno.watchFs`), sic through its stdout;
 * every wait is bounded by a deadline that fails the test. Each client runs
 * with a temporary HOME and folder of its own, removed on dispose, and never
 * reads the user's configuration.
 *
 * ```ts ignore
 * // In a Deno.test, with a server listening on `port`:
 * await using ana = await startIrssi({ port, nick: "ana" });
 * await using bea = await startWeechat({ port, nick: "bea" });
 * await ana.join("#lobby");
 * await bea.join("#lobby");
 * await ana.say("#lobby", "hola");
 * await bea.waitForMessage({ channel: "#lobby", from: "ana", text: "hola" });
 * await bea.act("#lobby", "waves");
 * await ana.waitForMessage({ channel: "#lobby", from: "bea", text: "waves", action: true });
 * await ana.say("bea", "psst"); // a private message
 * await bea.waitForMessage({ from: "ana", text: "psst" });
 * ```
 *
 * What each client needs from a server to count as connected (the driver's
 * start resolves then): ii and sic, the server's first line (sic: the 001);
 * WeeChat and irssi, the 001, after which they run a command of ours that
 * writes a marker to their log. They need the programs in tests/deps.sh
 * (ii, sic, weechat-headless, irssi, tmux, inotifywait).
 *
 * What they send, seen against ngircd: ii and sic send NICK and USER, no CAP;
 * WeeChat sends CAP LS 302, NICK, USER, then CAP REQ/CAP END; irssi sends
 * CAP LS 302 and an empty `JOIN :` (to get a 451 from servers without CAP),
 * waits for the CAP answer, then NICK and USER, and after 001 `MODE <nick> +i`;
 * after joining, `MODE #chan`, `WHO #chan` and `MODE #chan b`.
 *
 * @module
 */

import { DEADLINE_MS, within } from "./_helpers.ts";

const encoder = new TextEncoder();

/** One line a client showed, without its time stamp. */
export interface ClientLine {
  /**
   * Where the client showed it: a channel (`#lobby`), a nick for a private
   * conversation, or `""` for the server or status window. sic shows private
   * messages under your own nick, as it prints the target it received.
   */
  target: string;
  /** The text as the client wrote it (the time stamp removed). */
  text: string;
}

/** What to wait for with {@linkcode IrcClient.waitForMessage}. */
export interface ExpectedMessage {
  /** The nick that sent it. */
  from: string;
  /** Its text, whole. */
  text: string;
  /** The channel it was sent to; absent for a private message to this client. */
  channel?: string;
  /** Whether it is a CTCP ACTION (`/me`). */
  action?: boolean;
  /** Look only at lines after this many (see {@linkcode IrcClient.mark}). @default {0} */
  after?: number;
}

/** Options common to every driver. */
export interface IrcClientOptions {
  /** The server's port on 127.0.0.1. */
  port: number;
  /** The nick to connect with. */
  nick: string;
  /** A server password (PASS), if the server wants one. */
  password?: string;
}

/** A running IRC client. Dispose it to stop the program and remove its files. */
export interface IrcClient extends AsyncDisposable {
  /** Which program: `ii`, `sic`, `weechat` or `irssi`. */
  readonly program: string;
  /** The nick it connected with. */
  readonly nick: string;
  /** Every line the client showed so far, in order. */
  readonly lines: readonly ClientLine[];
  /** How many lines there are now, for `after` in the waits. */
  mark(): number;
  /** Joins a channel; resolves once the client shows that it joined. */
  join(channel: string): Promise<void>;
  /** Sends a message to a channel or, privately, to a nick. */
  say(target: string, text: string): Promise<void>;
  /** Sends an action (`/me text`) to a channel or nick. */
  act(target: string, text: string): Promise<void>;
  /**
   * Waits for a line whose text matches (a string must equal the text), in
   * `target` when given (compared ignoring ASCII case); returns it.
   */
  waitFor(
    match: string | RegExp,
    options?: { target?: string; after?: number },
  ): Promise<ClientLine>;
  /** Waits for a message or action as this client shows one; returns its line. */
  waitForMessage(expected: ExpectedMessage): Promise<ClientLine>;
  /** Sends QUIT (with `reason`) the client's own way, and waits for the program to end. */
  quit(reason?: string): Promise<void>;
}

/** Escapes text for use inside a RegExp. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function checkText(text: string): void {
  if (/[\r\n\0]/.test(text)) throw new RangeError("IRC text cannot hold CR, LF or NUL");
}

/** The lines a client showed, and the waits on them. */
class LineLog {
  readonly lines: ClientLine[] = [];
  #waiters = new Set<() => void>();
  #ended: Error | null = null;

  push(line: ClientLine): void {
    this.lines.push(line);
    for (const wake of this.#waiters) wake();
  }

  /** No more lines will come (the program ended): pending waits fail with `error`. */
  end(error: Error): void {
    this.#ended ??= error;
    for (const wake of this.#waiters) wake();
  }

  async waitFor(
    test: (line: ClientLine) => boolean,
    what: string,
    after = 0,
  ): Promise<ClientLine> {
    let checked = after;
    const find = () => {
      for (; checked < this.lines.length; checked++) {
        if (test(this.lines[checked])) return this.lines[checked];
      }
      return undefined;
    };
    const found = find();
    if (found) return found;
    const { promise, resolve, reject } = Promise.withResolvers<ClientLine>();
    const wake = () => {
      const line = find();
      if (line) resolve(line);
      else if (this.#ended) reject(this.#ended);
    };
    this.#waiters.add(wake);
    wake();
    try {
      return await within(promise, what).catch((error) => {
        throw new Error(`${error.message}; lines so far:\n${this.#show()}`, { cause: error });
      });
    } finally {
      this.#waiters.delete(wake);
    }
  }

  #show(): string {
    return this.lines.slice(-40).map((l) => `  [${l.target}] ${l.text}`).join("\n");
  }
}

/**
 * Follows the regular files under a folder as they grow, line by line, woken
 * by inotify through `inotifywait -m -r` (inotify-tools). FIFOs are never read.
 *
 * Not `Deno.watchFs`: with Deno 2.9.6 its watcher thread opens every new path
 * it sees (to learn its file id), and opening a FIFO nobody writes to blocks:
 * ii's `in` FIFOs and WeeChat's fifo stop all events and hang `close()`.
 * inotifywait only lists folders and watches them.
 */
class FolderTail implements AsyncDisposable {
  readonly #root: string;
  readonly #onLine: (path: string, line: string) => void;
  readonly #child: Deno.ChildProcess;
  readonly #events: Promise<void>;
  /** Per file: bytes consumed so far, and a partial last line. */
  readonly #files = new Map<string, { offset: number; partial: string }>();
  #dirty = false;
  #scanning: Promise<void> | null = null;

  private constructor(root: string, onLine: (path: string, line: string) => void) {
    this.#root = root;
    this.#onLine = onLine;
    this.#child = new Deno.Command("inotifywait", {
      args: ["-m", "-r", "-e", "create,modify,moved_to,close_write", "--format", "%w%f", root],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Every event is only a wake-up: the scan finds what changed.
    this.#events = readLines(this.#child.stdout, () => void this.scan());
  }

  /** Starts following `root`; resolves once inotify watches it (before anything is written). */
  static async start(
    root: string,
    onLine: (path: string, line: string) => void,
  ): Promise<FolderTail> {
    const tail = new FolderTail(root, onLine);
    const established = Promise.withResolvers<void>();
    let stderr = "";
    const reading = readLines(tail.#child.stderr, (line) => {
      stderr += line + "\n";
      if (line.startsWith("Watches established")) established.resolve();
    }).then(() => established.reject(new Error(`inotifywait ended: ${stderr}`)));
    try {
      await within(established.promise, `inotifywait to watch ${root}`);
    } catch (error) {
      await tail[Symbol.asyncDispose]();
      await reading;
      throw error;
    }
    tail.#stderrDone = reading;
    await tail.scan();
    return tail;
  }

  #stderrDone: Promise<void> = Promise.resolve();

  /** Reads what is new in every file; runs again at once if asked meanwhile. */
  scan(): Promise<void> {
    this.#dirty = true;
    this.#scanning ??= (async () => {
      try {
        while (this.#dirty) {
          this.#dirty = false;
          await this.#scanFolder(this.#root);
        }
      } finally {
        this.#scanning = null;
      }
    })();
    return this.#scanning;
  }

  async #scanFolder(folder: string): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(folder));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries) {
      const path = `${folder}/${entry.name}`;
      if (entry.isDirectory) await this.#scanFolder(path);
      else if (entry.isFile) await this.#readNew(path);
    }
  }

  async #readNew(path: string): Promise<void> {
    const state = this.#files.get(path) ?? { offset: 0, partial: "" };
    this.#files.set(path, state);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    try {
      const { size } = await file.stat();
      if (size <= state.offset) return;
      await file.seek(state.offset, Deno.SeekMode.Start);
      const buffer = new Uint8Array(size - state.offset);
      let filled = 0;
      while (filled < buffer.length) {
        const n = await file.read(buffer.subarray(filled));
        if (n === null) break;
        filled += n;
      }
      state.offset += filled;
      const text = state.partial + new TextDecoder().decode(buffer.subarray(0, filled));
      const parts = text.split("\n");
      state.partial = parts.pop()!;
      const relative = path.slice(this.#root.length + 1);
      for (const line of parts) this.#onLine(relative, line.replace(/\r$/, ""));
    } finally {
      file.close();
    }
  }

  /** Stops watching; what was read stays read. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // it ended already
    }
    await this.#child.status;
    await this.#events;
    await this.#stderrDone;
    await this.#scanning;
  }
}

/** Writes to a FIFO a client reads (ii's `in` files, WeeChat's fifo). */
async function writeFifo(path: string, text: string): Promise<void> {
  const file = await within(Deno.open(path, { write: true }), `opening the FIFO ${path}`);
  try {
    const bytes = encoder.encode(text);
    for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
  } finally {
    file.close();
  }
}

/** Reads a child's stdout as lines. */
async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let partial = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!;
    for (const line of parts) onLine(line.replace(/\r$/, ""));
  }
  if (partial !== "") onLine(partial);
}

/** The environment every client runs with: UTF-8, no user config, a HOME of its own. */
function clientEnv(home: string): Record<string, string> {
  return {
    HOME: home,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    LANG: "C.UTF-8",
    LC_ALL: "C.UTF-8",
    TERM: "xterm-256color",
  };
}

/** What every driver shares: the lines, the waits, the folder, the process. */
abstract class BaseClient implements IrcClient {
  abstract readonly program: string;
  readonly nick: string;
  readonly port: number;
  /** A temporary folder for the client's files, removed on dispose. */
  readonly dir: string;
  protected readonly log = new LineLog();
  /** Settles when the program ends. */
  protected exited: Promise<unknown> = Promise.resolve();

  protected constructor(options: IrcClientOptions, dir: string) {
    this.nick = options.nick;
    this.port = options.port;
    this.dir = dir;
  }

  get lines(): readonly ClientLine[] {
    return this.log.lines;
  }

  mark(): number {
    return this.log.lines.length;
  }

  waitFor(
    match: string | RegExp,
    options: { target?: string; after?: number } = {},
  ): Promise<ClientLine> {
    const { target, after } = options;
    const test = (l: ClientLine) =>
      (target === undefined || sameName(l.target, target)) &&
      (typeof match === "string" ? l.text === match : match.test(l.text));
    const where = target === undefined ? "" : ` in ${target}`;
    return this.log.waitFor(test, `${this.program} (${this.nick}) to show ${match}${where}`, after);
  }

  waitForMessage(expected: ExpectedMessage): Promise<ClientLine> {
    const target = expected.channel ?? this.privateTarget(expected.from);
    return this.waitFor(this.messagePattern(expected), { target, after: expected.after });
  }

  /** Where this client shows a private message from `from`. */
  protected privateTarget(from: string): string {
    return from;
  }

  /** How this client shows a message or action. */
  protected abstract messagePattern(expected: ExpectedMessage): RegExp;
  abstract join(channel: string): Promise<void>;
  abstract say(target: string, text: string): Promise<void>;
  abstract act(target: string, text: string): Promise<void>;
  abstract quit(reason?: string): Promise<void>;
  protected abstract stop(): Promise<void>;

  /** Waits until the client is ready; if it never is, stops it before failing. */
  protected async ready(wait: () => Promise<unknown>): Promise<this> {
    try {
      await wait();
      return this;
    } catch (error) {
      await this[Symbol.asyncDispose]().catch(() => {});
      throw error;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.stop();
    } finally {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }
}

/** A child process and its end, shared by the drivers that spawn one directly. */
class Child {
  readonly process: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(command: string, args: string[], options: Deno.CommandOptions) {
    this.process = new Deno.Command(command, { args, ...options }).spawn();
    this.status = this.process.status;
  }

  /** Kills the program if it still runs and waits for its end. */
  async stop(): Promise<void> {
    try {
      this.process.kill("SIGKILL");
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // TypeError: it exited already
    }
    await this.status;
  }
}

// --- ii ------------------------------------------------------------------------

/**
 * ii (suckless): a FIFO and a file per server, channel and nick. The driver
 * writes commands to `<dir>/127.0.0.1/in` (`/j #chan`, `/j nick text`, `/q`)
 * and text to `<dir>/127.0.0.1/<#chan>/in`, and reads every `out` file.
 * ii shows `<nick> text`, and an action as the raw CTCP text
 * (`<nick> \x01ACTION waves\x01`).
 */
class IiClient extends BaseClient {
  readonly program = "ii";
  #child!: Child;
  #tail!: FolderTail;

  static async start(options: IrcClientOptions): Promise<IiClient> {
    const dir = await Deno.makeTempDir({ prefix: "charla-ii-" });
    const client = new IiClient(options, dir);
    client.#tail = await FolderTail.start(dir, (path, line) => client.#onLine(path, line));
    const args = ["-s", "127.0.0.1", "-p", String(options.port), "-n", options.nick, "-i", dir];
    const env = clientEnv(dir);
    if (options.password !== undefined) {
      // ii reads the password from the environment variable -k names, so it is not in `ps`.
      env.II_PASSWORD = options.password;
      args.push("-k", "II_PASSWORD");
    }
    client.#child = new Child("ii", args, {
      clearEnv: true,
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    });
    // The last lines may still be on their way through inotify: read them first.
    client.exited = client.#child.status.then(() => client.#tail.scan()).then(() =>
      client.log.end(new Error("ii exited"))
    );
    // ii writes NICK and USER before it reads its FIFOs, so once the server
    // has said anything the commands written to `in` follow registration.
    return await client.ready(() => client.waitFor(/./, { target: "" }));
  }

  /** `127.0.0.1/out` is the server (""), `127.0.0.1/#lobby/out` is #lobby. */
  #onLine(path: string, line: string): void {
    const parts = path.split("/");
    if (parts.at(-1) !== "out") return;
    const target = parts.length === 2 ? "" : parts.slice(1, -1).join("/");
    this.log.push({ target, text: line.replace(/^\d+ /, "") });
  }

  get #server(): string {
    return `${this.dir}/127.0.0.1`;
  }

  async join(channel: string): Promise<void> {
    const after = this.mark();
    await writeFifo(`${this.#server}/in`, `/j ${channel}\n`);
    await this.waitFor(
      new RegExp(`^-!- ${literal(this.nick)}\\(.*\\) has joined ${literal(channel)}$`, "i"),
      {
        target: channel,
        after,
      },
    );
  }

  async say(target: string, text: string): Promise<void> {
    checkText(text);
    if (target.startsWith("#")) {
      await writeFifo(`${this.#server}/${target.toLowerCase()}/in`, `${text}\n`);
    } else {
      // "/j nick text" opens the conversation and sends the text.
      await writeFifo(`${this.#server}/in`, `/j ${target} ${text}\n`);
    }
  }

  act(target: string, text: string): Promise<void> {
    return this.say(target, `\x01ACTION ${text}\x01`);
  }

  protected messagePattern(m: ExpectedMessage): RegExp {
    const text = m.action ? `\x01ACTION ${m.text}\x01` : m.text;
    return new RegExp(`^<${literal(m.from)}> ${literal(text)}$`);
  }

  async quit(reason = ""): Promise<void> {
    await writeFifo(`${this.#server}/in`, `/q ${reason}\n`);
    await within(this.exited, "ii to exit after /q");
  }

  protected async stop(): Promise<void> {
    await this.#child.stop();
    await this.exited;
    await this.#tail[Symbol.asyncDispose]();
  }
}

// --- sic -------------------------------------------------------------------------

/**
 * sic (suckless): commands on stdin (`:j #chan`, `:m target text`, `:l #chan`,
 * and `:COMMAND ...` sent raw), everything the server says on stdout as
 * `<target> : <date> <time> <text>`. A message shows as `<nick> text` under
 * the channel, a private one under your own nick; numerics and other commands
 * as `>< CMD (params): trailing`. Closing stdin ends sic.
 */
class SicClient extends BaseClient {
  readonly program = "sic";
  #child!: Child;
  #stdin!: WritableStreamDefaultWriter<Uint8Array>;
  #reading!: Promise<void>;

  static async start(options: IrcClientOptions): Promise<SicClient> {
    const dir = await Deno.makeTempDir({ prefix: "charla-sic-" });
    const client = new SicClient(options, dir);
    const args = ["-h", "127.0.0.1", "-p", String(options.port), "-n", options.nick];
    if (options.password !== undefined) args.push("-k", options.password);
    client.#child = new Child("sic", args, {
      clearEnv: true,
      env: clientEnv(dir),
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    });
    client.#stdin = client.#child.process.stdin.getWriter();
    client.#reading = readLines(client.#child.process.stdout, (line) => client.#onLine(line));
    client.exited = Promise.all([client.#child.status, client.#reading]).finally(() =>
      client.log.end(new Error("sic exited"))
    );
    return await client.ready(() => client.waitFor(/^>< 001 /));
  }

  #onLine(line: string): void {
    const match = /^(\S+)\s*: \d\d\/\d\d\/\d\d \d\d:\d\d (.*)$/.exec(line);
    if (match === null) {
      this.log.push({ target: "", text: line });
      return;
    }
    // sic puts the server's name in the first column for numerics: make that "".
    const isServer = /^>< \d{3} /.test(match[2]);
    this.log.push({ target: isServer ? "" : match[1], text: match[2] });
  }

  async #send(line: string): Promise<void> {
    await this.#stdin.write(encoder.encode(`${line}\n`));
  }

  async join(channel: string): Promise<void> {
    const after = this.mark();
    await this.#send(`:j ${channel}`);
    // sic shows a JOIN under the nick that joined: "JOIN (): #lobby" or "JOIN (#lobby): ".
    const c = literal(channel);
    await this.waitFor(new RegExp(`^>< JOIN \\((?:${c})?\\): ?(?:${c})?$`, "i"), {
      target: this.nick,
      after,
    });
  }

  async say(target: string, text: string): Promise<void> {
    checkText(text);
    await this.#send(`:m ${target} ${text}`);
  }

  act(target: string, text: string): Promise<void> {
    return this.say(target, `\x01ACTION ${text}\x01`);
  }

  protected override privateTarget(): string {
    return this.nick;
  }

  protected messagePattern(m: ExpectedMessage): RegExp {
    const text = m.action ? `\x01ACTION ${m.text}\x01` : m.text;
    return new RegExp(`^<${literal(m.from)}> ${literal(text)}$`);
  }

  async quit(reason = ""): Promise<void> {
    await this.#send(`:QUIT :${reason}`);
    await this.#stdin.close().catch(() => {});
    await within(this.exited, "sic to exit after QUIT");
  }

  protected async stop(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    await this.#child.stop();
    await this.exited;
  }
}

// --- WeeChat ----------------------------------------------------------------------

const MARKER = "charla-driver: registered";

/**
 * weechat-headless with only the irc, fifo and logger plugins (no scripts, no
 * spell checker, nothing that reaches the network), its home in a temporary
 * folder (`--dir`). Commands go through the fifo plugin's pipe, each line a
 * buffer name, a space, `*` and a command or text (`irc.charla.#x *hola`, or a
 * `/join` on the server buffer `irc.server.charla`); what WeeChat shows is
 * read from the logger's files (`logs/irc.charla.#lobby.weechatlog`, flushed at
 * once), where a line is `prefix<TAB>message`: `ana<TAB>hola` (`@ana` for an
 * op), ` *<TAB>ana waves` for an action, `--><TAB>ana (~ana@host) has joined #x`.
 * Anti-flood delays are set to 0 (by default WeeChat sends one line per 2 s).
 */
class WeechatClient extends BaseClient {
  readonly program = "weechat";
  #child!: Child;
  #tail!: FolderTail;
  #fifo = "";

  static async start(options: IrcClientOptions): Promise<WeechatClient> {
    const dir = await Deno.makeTempDir({ prefix: "charla-weechat-" });
    const client = new WeechatClient(options, dir);
    client.#tail = await FolderTail.start(dir, (path, line) => client.#onLine(path, line));
    const s = "irc.server.charla";
    const commands = [
      "/set logger.file.flush_delay 0",
      "/set irc.server_default.anti_flood_prio_high 0",
      "/set irc.server_default.anti_flood_prio_low 0",
      `/server add charla 127.0.0.1/${options.port} -notls`,
      `/set ${s}.nicks ${options.nick}`,
      `/set ${s}.username ${options.nick}`,
      `/set ${s}.realname ${options.nick}`,
      ...(options.password === undefined ? [] : [`/set ${s}.password ${options.password}`]),
      // Run after the 001: the marker in the core log says "registered".
      `/set ${s}.command "/print -core ${MARKER}"`,
      "/connect charla",
    ];
    client.#child = new Child(
      "weechat-headless",
      [
        "--dir",
        dir,
        "--no-script",
        "--plugins",
        "irc,fifo,logger",
        "--stdout",
        "-r",
        commands.join(";"),
      ],
      { clearEnv: true, env: clientEnv(dir), stdin: "null", stdout: "null", stderr: "null" },
    );
    client.exited = client.#child.status.then(() => client.#tail.scan()).then(() =>
      client.log.end(new Error("weechat exited"))
    );
    // The fifo plugin names its pipe after WeeChat's pid (headless WeeChat does
    // not fork); it exists before the connection, so before the marker.
    client.#fifo = `${dir}/weechat_fifo_${client.#child.process.pid}`;
    return await client.ready(() => client.waitFor(MARKER, { target: "" }));
  }

  /** `logs/irc.charla.#lobby.weechatlog` is #lobby; the server and core logs are "". */
  #onLine(path: string, line: string): void {
    const match = /^logs\/(.*)\.weechatlog$/.exec(path);
    if (match === null) return;
    const name = match[1];
    const target = name.startsWith("irc.charla.") ? name.slice("irc.charla.".length) : "";
    const text = line.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\t/, "");
    // The core log's lines have an empty prefix: "\tcharla-driver: registered".
    this.log.push({ target, text: target === "" ? text.replace(/^\t/, "") : text });
  }

  #command(buffer: string, command: string): Promise<void> {
    return writeFifo(this.#fifo, `${buffer} ${command}\n`);
  }

  async join(channel: string): Promise<void> {
    const after = this.mark();
    await this.#command("irc.server.charla", `*/join ${channel}`);
    await this.waitFor(
      new RegExp(`^-->\\t${literal(this.nick)} \\(.*\\) has joined ${literal(channel)}$`, "i"),
      { target: channel, after },
    );
  }

  async say(target: string, text: string): Promise<void> {
    checkText(text);
    // "/msg" works whether or not a buffer for the target exists yet; "/msg *"
    // would need the buffer. Text written with "*" is sent as it is.
    if (target.startsWith("#")) await this.#command(`irc.charla.${target}`, `*${text}`);
    else await this.#command("irc.server.charla", `*/msg ${target} ${text}`);
  }

  async act(target: string, text: string): Promise<void> {
    checkText(text);
    // "/me" needs the target's buffer: a query buffer is opened first (the fifo
    // runs commands in order).
    if (!target.startsWith("#")) {
      await this.#command("irc.server.charla", `*/query -noswitch ${target}`);
    }
    await this.#command(`irc.charla.${target}`, `*/me ${text}`);
  }

  protected messagePattern(m: ExpectedMessage): RegExp {
    const from = literal(m.from);
    return m.action
      ? new RegExp(`^ \\*\\t${from} ${literal(m.text)}$`)
      : new RegExp(`^[~&@%+]?${from}\\t${literal(m.text)}$`);
  }

  async quit(reason = ""): Promise<void> {
    await writeFifo(this.#fifo, `*/quit ${reason}\n`);
    await within(this.exited, "weechat to exit after /quit");
  }

  protected async stop(): Promise<void> {
    await this.#child.stop();
    await this.exited;
    await this.#tail[Symbol.asyncDispose]();
  }
}

// --- irssi ---------------------------------------------------------------------------

/**
 * irssi in a tmux session of its own (a private socket in the temporary
 * folder, no tmux or irssi config of the user's). Commands are typed with
 * `tmux send-keys`, always naming their target (`/msg #lobby text`,
 * `/action #lobby waves`) so the active window does not matter. What irssi
 * shows is read from its logs: one per channel or query (`logs/#lobby.log`),
 * and the status window (`logs/status.log`, target ""). Lines look like
 * `< ana> hola` (`<@ana>` for an op), ` * ana waves`,
 * `-!- ana [~ana@host] has joined #lobby`. The config turns off the command
 * queue delay (`cmd_queue_speed`, 2.2 s between commands by default) and paste
 * detection (typed bursts would otherwise be held as a paste).
 */
class IrssiClient extends BaseClient {
  readonly program = "irssi";
  #tail!: FolderTail;
  #socket = "";
  #waitFor!: Child;

  static async start(options: IrcClientOptions): Promise<IrssiClient> {
    const dir = await Deno.makeTempDir({ prefix: "charla-irssi-" });
    const client = new IrssiClient(options, dir);
    client.#socket = `${dir}/tmux.sock`;
    await Deno.mkdir(`${dir}/logs`);
    const quote = (s: string) => JSON.stringify(s); // irssi's config takes "..." with \ escapes
    const password = options.password === undefined
      ? ""
      : ` password = ${quote(options.password)};`;
    await Deno.writeTextFile(
      `${dir}/config`,
      `servers = (
  { address = "127.0.0.1"; chatnet = "charla"; port = "${options.port}"; use_tls = "no";
    autoconnect = "yes";${password} }
);
chatnets = { charla = { type = "IRC"; autosendcmd = "/echo ${MARKER}"; }; };
settings = {
  core = { real_name = ${quote(options.nick)}; user_name = ${quote(options.nick)};
    nick = ${quote(options.nick)}; };
  "irc/core" = { cmd_queue_speed = "0msec"; };
  "fe-text" = { paste_detect_time = "0"; };
  "fe-common/core" = { autolog = "yes"; autolog_path = ${quote(`${dir}/logs/$0.log`)};
    autolog_level = "ALL"; };
};
logs = { ${quote(`${dir}/logs/status.log`)} = { auto_open = "yes"; level = "ALL";
  items = ( { type = "window"; name = "1"; } ); }; };
`,
    );
    client.#tail = await FolderTail.start(
      `${dir}/logs`,
      (path, line) => client.#onLine(path, line),
    );
    const env = clientEnv(dir);
    const tmux = ["-S", client.#socket, "-f", "/dev/null"];
    // The session runs irssi, then signals "irssi-done", which #waitFor waits for.
    const run = `irssi --home=${dir}; tmux -S ${client.#socket} wait-for -S irssi-done`;
    const started = await new Deno.Command("tmux", {
      args: [...tmux, "new-session", "-d", "-s", "irssi", "-x", "200", "-y", "50", run],
      clearEnv: true,
      env,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!started.success) {
      await client.#tail[Symbol.asyncDispose]();
      throw new Error(`tmux could not start irssi: ${new TextDecoder().decode(started.stderr)}`);
    }
    client.#waitFor = new Child("tmux", [...tmux, "wait-for", "irssi-done"], {
      clearEnv: true,
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    });
    client.exited = client.#waitFor.status.then(() => client.#tail.scan()).then(() =>
      client.log.end(new Error("irssi exited"))
    );
    return await client.ready(() => client.waitFor(new RegExp(`-!- ${MARKER}$`), { target: "" }));
  }

  #onLine(path: string, line: string): void {
    if (line.startsWith("--- ")) return; // "--- Log opened …", "--- Day changed …"
    const target = path === "status.log" ? "" : path.replace(/\.log$/, "");
    this.log.push({ target, text: line.replace(/^\d\d:\d\d /, "") });
  }

  /** Types a line into irssi and presses Enter. */
  async #type(line: string): Promise<void> {
    checkText(line);
    for (const keys of [["-l", line], ["Enter"]]) {
      const { success, stderr } = await new Deno.Command("tmux", {
        args: ["-S", this.#socket, "send-keys", "-t", "irssi", ...keys],
        clearEnv: true,
        env: clientEnv(this.dir),
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!success) throw new Error(`tmux send-keys failed: ${new TextDecoder().decode(stderr)}`);
    }
  }

  async join(channel: string): Promise<void> {
    const after = this.mark();
    await this.#type(`/join ${channel}`);
    await this.waitFor(
      new RegExp(`^-!- ${literal(this.nick)} \\[.*\\] has joined ${literal(channel)}$`, "i"),
      { target: channel, after },
    );
  }

  say(target: string, text: string): Promise<void> {
    return this.#type(`/msg ${target} ${text}`);
  }

  act(target: string, text: string): Promise<void> {
    return this.#type(`/action ${target} ${text}`);
  }

  protected messagePattern(m: ExpectedMessage): RegExp {
    const from = literal(m.from);
    return m.action
      ? new RegExp(`^ \\* ${from} ${literal(m.text)}$`)
      : new RegExp(`^<[ ~&@%+]?${from}> ${literal(m.text)}$`);
  }

  async quit(reason = ""): Promise<void> {
    await this.#type(`/quit ${reason}`);
    await within(this.exited, "irssi to exit after /quit");
  }

  protected async stop(): Promise<void> {
    // Ends irssi and tmux together; the wait-for client ends with the server.
    await new Deno.Command("tmux", {
      args: ["-S", this.#socket, "kill-server"],
      clearEnv: true,
      env: clientEnv(this.dir),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    await within(this.#waitFor.status, "tmux to end", DEADLINE_MS);
    await this.exited;
    await this.#tail[Symbol.asyncDispose]();
  }
}

/**
 * Starts ii connected to 127.0.0.1:`port` as `nick`; resolves once the server
 * has answered.
 */
export function startIi(options: IrcClientOptions): Promise<IrcClient> {
  return IiClient.start(options);
}

/** Starts sic connected to 127.0.0.1:`port` as `nick`; resolves at the 001. */
export function startSic(options: IrcClientOptions): Promise<IrcClient> {
  return SicClient.start(options);
}

/** Starts weechat-headless connected to 127.0.0.1:`port` as `nick`; resolves after the 001. */
export function startWeechat(options: IrcClientOptions): Promise<IrcClient> {
  return WeechatClient.start(options);
}

/** Starts irssi under tmux connected to 127.0.0.1:`port` as `nick`; resolves after the 001. */
export function startIrssi(options: IrcClientOptions): Promise<IrcClient> {
  return IrssiClient.start(options);
}

/** Every driver by program name, for tests that run the same steps with each. */
export const IRC_CLIENTS: Readonly<
  Record<"ii" | "sic" | "weechat" | "irssi", (options: IrcClientOptions) => Promise<IrcClient>>
> = Object.freeze({ ii: startIi, sic: startSic, weechat: startWeechat, irssi: startIrssi });
