/**
 * The bench's peers (C, Node and bare Deno relays) speak the protocol subset the
 * generator relies on: welcome, `/join` with its confirmation, lines relayed to
 * the sender's room only, the operator's lines, the log format, bounded lines,
 * and a last line without `\n` at EOF. A peer that got these wrong would make
 * the bench compare charla with a server that does less.
 *
 * Needs `cc` and `node`, as the bench does; a missing one fails the test.
 *
 * @module
 */

import assert from "node:assert/strict";
import { TestClient, within } from "../tests/_helpers.ts";
import { buildCRelay, type ServerKind, ServerProcess } from "./server_process.ts";

const PEERS: ServerKind[] = ["c", "node", "deno"];

/** Builds the C relay into a temporary directory for the test's duration. */
async function withPeer(
  kind: ServerKind,
  relay: boolean,
  body: (server: ServerProcess) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "charla-peers-test-" });
  try {
    let cRelay: string | undefined;
    if (kind === "c") {
      const built = await buildCRelay(new URL(`file://${dir}/`));
      assert.ok(built !== null, "`cc` is needed to build the C relay (apt-get install gcc)");
      cRelay = built;
    }
    await using server = await ServerProcess.start(kind, { relay, cRelay });
    await body(server);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Waits until the server's log (its stdout file) matches `pattern`: it is written after the round. */
async function logMatches(server: ServerProcess, pattern: RegExp): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!pattern.test(await Deno.readTextFile(server.stdoutPath))) {
    if (performance.now() > deadline) {
      const log = await Deno.readTextFile(server.stdoutPath);
      assert.fail(`The log never matched ${pattern}:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The lines a client reads up to `match`, notices (`* `) left out, the match included. */
async function relayedUntil(client: TestClient, match: string): Promise<string[]> {
  return (await client.lines.until(match)).filter((line) => !line.startsWith("* "));
}

for (const kind of PEERS) {
  Deno.test(`bench ${kind} relay relays a line to its room only, and logs it`, async () => {
    await withPeer(kind, true, async (server) => {
      await using ana = await TestClient.connect(server.port);
      await using bea = await TestClient.connect(server.port);
      await using eva = await TestClient.connect(server.port);
      assert.match(ana.name, /^user\d+$/);

      await ana.send("/join #x");
      await ana.lines.until("* you are now in #x (1 people)");
      await bea.send("/join #x");
      await bea.lines.until("* you are now in #x (2 people)");
      await ana.send("hola", "//slash", "/nick z");
      assert.deepEqual(await relayedUntil(bea, `<${ana.name}> /slash`), [
        `<${ana.name}> hola`,
        `<${ana.name}> /slash`,
      ]);
      assert.ok(
        (await ana.lines.until(/^\* error: /)).at(-1)!.includes("not supported"),
        "other commands are refused",
      );
      // eva, in the lobby, was written to (if at all) in the same turn as bea: the
      // operator's line now comes next, and nothing of ana's before it.
      await server.say("fin");
      assert.deepEqual(await relayedUntil(eva, "<server> fin"), ["<server> fin"]);
      assert.deepEqual(await relayedUntil(bea, "<server> fin"), ["<server> fin"]);

      await logMatches(
        server,
        new RegExp(`^\\d\\d:\\d\\d:\\d\\d \\[#\\d+ ${ana.name}\\] hola$`, "m"),
      );
    });
  });

  Deno.test(`bench ${kind} relay drops an over-long line and keeps the client`, async () => {
    await withPeer(kind, true, async (server) => {
      await using ana = await TestClient.connect(server.port);
      await using bea = await TestClient.connect(server.port);
      await ana.write(`${"x".repeat(70_000)}\nshort\n`);
      await ana.lines.until("* error: line longer than 65536 bytes was dropped");
      assert.deepEqual(await relayedUntil(bea, `<${ana.name}> short`), [`<${ana.name}> short`]);
    });
  });

  Deno.test(`bench ${kind} relay logs a last line without newline, then closes`, async () => {
    await withPeer(kind, false, async (server) => {
      await using ana = await TestClient.connect(server.port);
      await ana.write("uno\ndos");
      await (ana.conn as Deno.TcpConn).closeWrite();
      await within(ana.lines.rest(), "the server to close");
      await logMatches(server, /\] uno\n.*\] dos\n/);
    });
  });
}
