/**
 * client.ts as a user meets it: the README's own command lines, refusals and
 * their exit code, staying out after a kick, time stamps, and lines typed
 * while disconnected.
 */

import assert from "node:assert/strict";
import { AccessList } from "../lib/net/cidr.ts";
import { ChatClient } from "../lib/client/chat_client.ts";
import { ServerReader } from "../lib/client/server_reader.ts";
import { runOperatorLine } from "../lib/operator.ts";
import type { ChatEvent } from "../lib/core/messages.ts";
import { LineReader, startServer, streamSource, TestClient, within } from "./_helpers.ts";

const root = new URL("..", import.meta.url);
const encoder = new TextEncoder();

/**
 * Every `deno task client …` command line the README shows in a code block or
 * in backticks, without its comment and without what pipes into it.
 */
async function readmeClientCommands(): Promise<string[]> {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const found = new Set<string>();
  for (const m of readme.matchAll(/deno task client[^\n`#|]*/g)) {
    const command = m[0].trim();
    if (!command.includes("[")) found.add(command); // "[options] [host]" is a synopsis
  }
  return [...found];
}

/** Runs `deno task client <args>` with an empty stdin; returns exit code and output. */
async function runTask(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await within(
    new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "client", ...args],
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output(),
    `deno task client ${args.join(" ")}`,
  );
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** `deno task client <args>` running, its stdout as lines; killed (if need be) on dispose. */
function spawnTask(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "client", ...args],
    cwd: root,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  return {
    lines: new LineReader(streamSource(child.stdout)),
    exit: async () => (await within(child.status, "client.ts to exit")).code,
    async [Symbol.asyncDispose]() {
      await child.stdin.close().catch(() => {});
      try {
        child.kill();
      } catch {
        // Exited already.
      }
      await child.status;
    },
  };
}

Deno.test("every 'deno task client' command line in the README works as written", async () => {
  const commands = await readmeClientCommands();
  assert.ok(commands.length >= 2, `found ${commands.join(" | ")}`);
  await using t = startServer({ relay: true });
  for (const command of commands) {
    const words = command.split(/\s+/).slice(3);
    // The README's commands reach 127.0.0.1:5000; the test's server is elsewhere.
    const { code, stdout, stderr } = await runTask([...words, "-p", String(t.port)]);
    assert.equal(code, 0, `${command}: exit ${code}\n${stderr}`);
    assert.match(stdout, /^\* welcome, you are user\d+$/m, command);
    const name = /--name (\S+)/.exec(command)?.[1];
    if (name !== undefined) assert.match(stdout, new RegExp(`^\\* you are now ${name}$`, "m"));
  }
});

Deno.test("client.ts is told it is refused, says so, and exits 3: denied and full", async () => {
  {
    await using t = startServer({ relay: true, access: new AccessList({ deny: ["127.0.0.0/8"] }) });
    const { code, stdout } = await runTask(["-p", String(t.port)]);
    assert.equal(code, 3);
    assert.equal(stdout, "* access denied\n");
  }
  {
    await using t = startServer({ relay: true, maxClients: 1 });
    await using _first = await TestClient.connect(t.port);
    const { code, stdout } = await runTask(["-p", String(t.port)]);
    assert.equal(code, 3);
    assert.equal(stdout, "* server full\n");
  }
});

Deno.test("client.ts --reconnect stays out after it was kicked, and exits 3", async () => {
  await using t = startServer({ relay: true });
  await using cli = spawnTask(["-p", String(t.port), "--reconnect", "--name", "ana"]);
  await cli.lines.until("* you are now ana");
  runOperatorLine(t.server, "/kick ana fuera");
  assert.deepEqual(await cli.lines.rest(), ["* you were kicked: fuera"]);
  assert.equal(await cli.exit(), 3);
  assert.equal(t.log.of("connect").length, 1, "it came back");
});

Deno.test("client.ts --reconnect stays out after it was banned, and is refused at the door after", async () => {
  await using t = startServer({ relay: true });
  {
    await using cli = spawnTask(["-p", String(t.port), "--reconnect", "--name", "ana"]);
    await cli.lines.until("* you are now ana");
    assert.match(
      runOperatorLine(t.server, "/ban ana spam").replies[0],
      /^banned ana and 127\.0\.0\.1/,
    );
    assert.deepEqual(await cli.lines.rest(), ["* you are banned: spam"]);
    assert.equal(await cli.exit(), 3);
    assert.equal(t.log.of("connect").length, 1, "it came back");
  }
  // Its address is banned too: a new client is refused before anything else, and says so.
  const { code, stdout } = await runTask(["-p", String(t.port), "--reconnect"]);
  assert.equal(code, 3);
  assert.equal(stdout, "* you are banned: spam\n");
  assert.deepEqual(t.log.of("refused").map((e) => e.reason), ["banned by 127.0.0.1"]);
});

Deno.test("client.ts --timestamps shows HH:MM before each line", async () => {
  await using t = startServer({ relay: true });
  const { code, stdout } = await runTask(["-p", String(t.port), "--timestamps"]);
  assert.equal(code, 0);
  const lines = stdout.trimEnd().split("\n");
  assert.ok(lines.length >= 2);
  for (const line of lines) assert.match(line, /^\d\d:\d\d \* /);
});

Deno.test("ChatClient sends lines typed while the server was down once it is back, and says how many", async () => {
  // A port nobody listens on yet.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const resent: number[] = [];
  const events: ChatEvent[] = [];
  const stop = new AbortController();
  const client = new ChatClient({ port }, {
    open: (send) => new ServerReader({ event: (e) => events.push(e), text: () => {} }, send),
    reconnect: true,
    signal: stop.signal,
    onResent: (count) => resent.push(count),
  });
  const running = client.run();
  for (const text of ["uno", "dos", "tres"]) client.send(encoder.encode(`${text}\n`));
  assert.equal(client.connected, false);
  await using t = startServer({
    relay: true,
    listener: Deno.listen({ hostname: "127.0.0.1", port }),
  });
  await using other = await TestClient.connect(t.port);
  const seen = await other.lines.until(/<user\d+> tres/);
  assert.deepEqual(seen.filter((l) => l.startsWith("<")).map((l) => l.replace(/^<\S+> /, "")), [
    "uno",
    "dos",
    "tres",
  ]);
  assert.deepEqual(resent, [3]);
  stop.abort();
  await running;
});
