/**
 * End to end with IRC clients nobody here wrote: irssi, WeeChat, ii and sic
 * (Debian's packages, driven by tests/_irc_clients.ts) share a room with an
 * `nc` client on charla's line port, and exchange lines, actions and private
 * messages both ways.
 */

import assert from "node:assert/strict";
import { LineReader, startServer, streamSource, type TestServer } from "./_helpers.ts";
import { type IrcClient, startIi, startIrssi, startSic, startWeechat } from "./_irc_clients.ts";
import { ircTransport } from "../lib/transports/irc.ts";

const encoder = new TextEncoder();

/** A server with a line port and an IRC port on 127.0.0.1. */
function ircServer(): TestServer & { ircPort: number } {
  const test = startServer({ relay: true });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  test.server.serve(listener, ircTransport(test.server.core));
  return Object.assign(test, { ircPort: listener.addr.port });
}

/** `nc 127.0.0.1 <port>`: the real program, typing lines and reading what it prints. */
class Nc implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly lines: LineReader;

  constructor(port: number) {
    this.#child = new Deno.Command("nc", {
      args: ["127.0.0.1", String(port)],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.lines = new LineReader(streamSource(this.#child.stdout));
  }

  /** Types a line. */
  async type(line: string): Promise<void> {
    await this.#stdin.write(encoder.encode(`${line}\n`));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stdin.close().catch(() => {});
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // It exited already.
    }
    await this.#child.status;
    await this.lines.rest().catch(() => {});
  }
}

/**
 * The steps every pair of IRC clients goes through with an nc user in
 * `#lobby`: each way, a line, an action and a private message.
 */
async function talk(nc: Nc, name: string, a: IrcClient, b: IrcClient): Promise<void> {
  await nc.lines.until(/^\* you are in #lobby/);
  await nc.type(`/nick ${name}`);
  await nc.lines.until(`* you are now ${name}`);
  await a.join("#lobby");
  await nc.lines.until(`* ${a.nick} joined`);
  await b.join("#lobby");
  await nc.lines.until(`* ${b.nick} joined`);

  // nc → both IRC clients: a line and an action.
  await nc.type("hola desde nc, ¿qué tal? 你好");
  await a.waitForMessage({ channel: "#lobby", from: name, text: "hola desde nc, ¿qué tal? 你好" });
  await b.waitForMessage({ channel: "#lobby", from: name, text: "hola desde nc, ¿qué tal? 你好" });
  await nc.type("/me saluda");
  await a.waitForMessage({ channel: "#lobby", from: name, text: "saluda", action: true });
  await b.waitForMessage({ channel: "#lobby", from: name, text: "saluda", action: true });

  // Each IRC client → nc and the other IRC client.
  await a.say("#lobby", `soy ${a.program}`);
  await nc.lines.until(`<${a.nick}> soy ${a.program}`);
  await b.waitForMessage({ channel: "#lobby", from: a.nick, text: `soy ${a.program}` });
  await b.act("#lobby", "aplaude");
  await nc.lines.until(`** ${b.nick} aplaude`);
  await a.waitForMessage({ channel: "#lobby", from: b.nick, text: "aplaude", action: true });

  // Private messages, both ways, with each IRC client.
  for (const client of [a, b]) {
    await nc.type(`/msg ${client.nick} psst, ${client.program}`);
    await nc.lines.until(`-> *${client.nick}* psst, ${client.program}`);
    await client.waitForMessage({ from: name, text: `psst, ${client.program}` });
    await client.say(name, `te oigo, ${name}`);
    await nc.lines.until(`*${client.nick}* te oigo, ${name}`);
    await client.act(name, "guiña");
    await nc.lines.until(`*${client.nick}* ** ${client.nick} guiña`);
  }
  await nc.type(`/msg ${a.nick} /me sonríe`);
  await a.waitForMessage({ from: name, text: "/me sonríe" });

  // The IRC clients privately to each other, through charla.
  await a.say(b.nick, "entre nosotros");
  await b.waitForMessage({ from: a.nick, text: "entre nosotros" });
}

Deno.test("irssi and WeeChat share #lobby with an nc user: lines, actions, private messages", async () => {
  await using server = ircServer();
  await using nc = new Nc(server.port);
  await using ana = await startIrssi({ port: server.ircPort, nick: "ana" });
  await using bea = await startWeechat({ port: server.ircPort, nick: "bea" });
  await talk(nc, "carla", ana, bea);

  // A quit with a message reaches the others as it was given.
  await bea.quit("hasta luego");
  await nc.lines.until("* bea left (quit: hasta luego)");
  await ana.waitFor(/^-!- bea \[.*\] has quit \[Quit: hasta luego\]$/, { target: "#lobby" });
});

Deno.test("ii and sic share #lobby with an nc user: lines, actions, private messages", async () => {
  await using server = ircServer();
  await using nc = new Nc(server.port);
  await using dana = await startIi({ port: server.ircPort, nick: "dana" });
  await using eva = await startSic({ port: server.ircPort, nick: "eva" });
  await talk(nc, "fede", dana, eva);
  await eva.quit("me voy");
  await nc.lines.until("* eva left (quit: me voy)");
  // ii shows a quit in its server window.
  const quit = await dana.waitFor(/^-!- eva\(.*\) has quit/, { target: "" });
  assert.match(quit.text, /Quit: me voy/);
});
