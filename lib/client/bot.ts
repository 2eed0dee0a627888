/**
 * A string-level client for bots: connect, get each message as
 * `{ room, from, text, private }`, say something, join a room.
 *
 * @module
 */

import { ChatClient, type ConnectTarget } from "./chat_client.ts";
import { ServerReader } from "./server_reader.ts";
import type { ChatEvent, Who } from "../core/messages.ts";

const encoder = new TextEncoder();

/** A message a bot receives. */
export interface BotMessage {
  /** The room it was said in; null for a private message. */
  readonly room: string | null;
  /** Who said it (`server` for the operator). */
  readonly from: string;
  readonly text: string;
  /** True for a private message to the bot. */
  readonly private: boolean;
  /** True for a `/me` action. */
  readonly action: boolean;
}

/** Options for {@linkcode Bot.connect}. */
export interface BotOptions extends ConnectTarget {
  /** The name to ask for. @default the server's `user<n>` */
  name?: string;
  /** Connect again when the connection drops. @default {false} */
  reconnect?: boolean;
  /** Every event, for bots that want more than messages. */
  onEvent?: (event: ChatEvent) => void;
  /** The server's password, for a server that asks for one. @default none */
  password?: string;
}

/**
 * A bot connected to a charla server.
 *
 * @example An echo bot
 * ```ts
 * import { Bot } from "./bot.ts";
 * import { ChatServer } from "../chat_server.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * await using server = new ChatServer(listener, { relay: true });
 * const port = listener.addr.port;
 * await using echo = await Bot.connect({ port, name: "eco" });
 * echo.on("message", (m) => echo.say(`${m.from} said: ${m.text}`));
 * await using ana = await Bot.connect({ port, name: "ana" });
 * const heard = new Promise<string>((resolve) => ana.on("message", (m) => resolve(m.text)));
 * ana.say("hola");
 * assert.equal(await heard, "ana said: hola");
 * ```
 */
export class Bot implements AsyncDisposable {
  /** Settles when the bot's connection has ended for good. */
  readonly finished: Promise<void>;
  readonly #client: ChatClient;
  readonly #stop = new AbortController();
  readonly #handlers: ((message: BotMessage) => void)[] = [];
  #me: Who | null = null;
  /** The room the bot is in. */
  room: string | null = null;

  private constructor(target: ConnectTarget, options: BotOptions, welcomed: (bot: Bot) => void) {
    this.#client = new ChatClient(target, {
      open: (send, close) =>
        new ServerReader(
          {
            event: (event) => {
              options.onEvent?.(event);
              this.#event(event, options.name, welcomed);
            },
            text: () => {},
          },
          send,
          { close, password: () => options.password ?? null },
        ),
      reconnect: options.reconnect ?? false,
      signal: this.#stop.signal,
      greeting: options.name === undefined ? undefined : encoder.encode(`/nick ${options.name}\n`),
    });
    this.finished = this.#client.run().then(() => {});
  }

  /**
   * Connects, asks for `name`, and resolves once the server has welcomed the
   * bot (under that name, when one was asked for).
   */
  static async connect(options: BotOptions = {}): Promise<Bot> {
    const welcomed = Promise.withResolvers<Bot>();
    const bot = new Bot(options, options, (b) => welcomed.resolve(b));
    bot.finished.then(
      () => welcomed.reject(new Error("The connection ended before the server welcomed the bot")),
      (error) => welcomed.reject(error),
    );
    return await welcomed.promise;
  }

  /** The bot's name on the server. */
  get name(): string {
    return this.#me?.name ?? "";
  }

  /** Calls `handler` for each message said in the bot's rooms or to it privately. */
  on(_type: "message", handler: (message: BotMessage) => void): this {
    this.#handlers.push(handler);
    return this;
  }

  /** Says `text` in the bot's room (each line of it; a leading `/` is sent as text). */
  say(text: string): void {
    for (const line of text.split("\n")) {
      this.#send(line.startsWith("/") ? `/${line}` : line);
    }
  }

  /** A private message. */
  msg(to: string, text: string): void {
    for (const line of text.split("\n")) this.#send(`/msg ${to} ${line}`);
  }

  /** Goes to a room. */
  join(room: string): void {
    this.#send(`/join ${room}`);
  }

  /** Leaves the server. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.finished.catch(() => {});
  }

  /** Leaves the server: `await using bot = await Bot.connect(…)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #send(line: string): void {
    this.#client.send(encoder.encode(`${line}\n`));
  }

  #event(event: ChatEvent, wanted: string | undefined, welcomed: (bot: Bot) => void): void {
    switch (event.type) {
      case "welcome":
        this.#me = event.you;
        if (wanted === undefined || event.you.name === wanted) welcomed(this);
        return;
      case "renamed":
        this.#me = event.you;
        if (event.you.name === wanted) welcomed(this);
        return;
      case "joined":
        this.room = event.room;
        return;
      case "error":
        // A name that was refused: welcomed all the same, under the default name.
        if (event.code === "bad_name" || event.code === "name_taken") welcomed(this);
        return;
      case "message":
      case "action":
        if (event.from.id === this.#me?.id) return;
        return this.#emit({
          room: event.room,
          from: event.from.name,
          text: event.text,
          private: false,
          action: event.type === "action",
        });
      case "private":
        if (event.echo) return;
        return this.#emit({
          room: null,
          from: event.from?.name ?? "server",
          text: event.text,
          private: true,
          action: event.action,
        });
    }
  }

  #emit(message: BotMessage): void {
    for (const handler of this.#handlers) handler(message);
  }
}
