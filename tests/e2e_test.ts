/**
 * The real programs: `server.ts` and `client.ts` spawned with `Deno.execPath()`
 * and `--allow-net` only, as a user runs them, talking over 127.0.0.1.
 */

import assert from "node:assert/strict";
import { LineReader, Program, TestClient, within } from "./_helpers.ts";

/** Starts server.ts on a free port; returns it with the port it printed. */
async function server(...args: string[]): Promise<{ program: Program; port: number }> {
  const program = new Program("server.ts", ["--port", "0", ...args]);
  const first = await program.stdout.next("the listening line");
  const match = /^listening on 127\.0\.0\.1:(\d+)$/.exec(first ?? "");
  assert.ok(match, `unexpected first line: ${first}`);
  return { program, port: Number(match[1]) };
}

/** A port nobody listens on. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

Deno.test("server.ts and client.ts chat: lines both ways, operator on stdin", async () => {
  const { program: srv, port } = await server();
  await using _srv = srv;
  await using cli = new Program("client.ts", ["127.0.0.1", String(port)]);
  assert.equal(await cli.stdout.next(), "* welcome, you are user1");
  assert.equal(await cli.stderr.next(), `charla: connected to 127.0.0.1:${port}`);
  await cli.write("hola, servidor ñ\n");
  const seen = await srv.stdout.until(/hola, servidor/);
  assert.match(seen.at(-1)!, /^\d\d:\d\d:\d\d \[#1 user1\] hola, servidor ñ$/);
  assert.match(seen[0], /^\d\d:\d\d:\d\d \* #1 user1 connected from 127\.0\.0\.1:\d+$/);
  await srv.write("hola, cliente 你好\n");
  assert.equal((await cli.stdout.until(/^<server>/)).at(-1), "<server> hola, cliente 你好");
  // SIGTERM: the client is told, both exit 0.
  srv.child.kill("SIGTERM");
  assert.equal((await cli.stdout.until(/shutting down/)).at(-1), "* server shutting down");
  assert.equal(await cli.stderr.next(), "charla: connection closed by server");
  assert.equal(await cli.exit(), 0);
  assert.equal(await srv.exit(), 0);
  assert.match((await srv.stdout.rest()).join("\n"), /\* server shutting down$/);
});

Deno.test("server.ts keeps serving after its stdin ends", async () => {
  const { program: srv, port } = await server();
  await using _srv = srv;
  await srv.closeStdin();
  assert.match((await srv.stdout.until(/console input ended/)).at(-1)!, /still serving/);
  await using a = await TestClient.connect(port);
  await a.send("¿sigues ahí?");
  assert.match((await srv.stdout.until(/sigues/)).at(-1)!, /\[#1 user1\] ¿sigues ahí\?$/);
  srv.child.kill("SIGINT");
  assert.equal(await srv.exit(), 0);
});

Deno.test("server.ts /quit on stdin shuts down gracefully with exit code 0", async () => {
  const { program: srv, port } = await server();
  await using _srv = srv;
  await using a = await TestClient.connect(port);
  await srv.write("/quit\n");
  assert.deepEqual(await a.lines.rest(), ["* server shutting down"]);
  assert.equal(await srv.exit(), 0);
});

Deno.test("server.ts rejects bad flags with one line, the usage hint, and exit code 2", async () => {
  for (
    const [args, message] of [
      [
        ["--port", "99999"],
        'charla server: invalid --port "99999": must be a number from 0 to 65535',
      ],
      [["--port", "abc"], 'charla server: invalid --port "abc": must be a number from 0 to 65535'],
      [["--bogus"], 'charla server: unknown option "--bogus"'],
      [["--port"], "charla server: option --port needs a value"],
      [
        ["--max-clients", "0"],
        'charla server: invalid --max-clients "0": must be a whole number of at least 1',
      ],
      [["--deny", "10.0.0.0/33"], /^charla server: invalid --deny "10\.0\.0\.0\/33": /],
      // `deno task server -- --port 99999` passes the "--" on: it is dropped, not an end of flags.
      [
        ["--", "--port", "99999"],
        'charla server: invalid --port "99999": must be a number from 0 to 65535',
      ],
      [["extra"], 'charla server: unexpected argument "extra"'],
      [
        ["--max-line", "10G"],
        'charla server: invalid --max-line "10G": must be a byte count from 1 to 16M, such as 65536, 64K or 1M',
      ],
      [["--tls-cert", "c.pem"], "charla server: --tls-cert needs --tls-key"],
      [["--tls-key", "k.pem"], "charla server: --tls-key needs --tls-cert"],
      [
        ["--unix", "/tmp/x", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
        "charla server: --unix cannot be used with --tls-cert",
      ],
      [["--unix", "/tmp/x", "-p", "6000"], "charla server: --unix cannot be used with --port"],
      [["--room", "a b"], /^charla server: invalid --room "a b": /],
    ] as [string[], string | RegExp][]
  ) {
    await using srv = new Program("server.ts", args);
    assert.equal(await srv.exit(), 2, args.join(" "));
    const err = await srv.stderr.rest();
    if (typeof message === "string") assert.equal(err[0], message);
    else assert.match(err[0], message);
    assert.deepEqual(err.slice(1), ["Try 'server.ts --help' for more information."]);
    assert.deepEqual(await srv.stdout.rest(), []);
  }
});

Deno.test("server.ts says the port is in use and exits 1", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using srv = new Program("server.ts", ["--port", String(taken.addr.port)]);
  assert.equal(await srv.exit(), 1);
  assert.deepEqual(await srv.stderr.rest(), [
    `charla server: cannot listen on "127.0.0.1:${taken.addr.port}": the address is in use ` +
    "(is another server running there?); stop it or pick another --port",
  ]);
});

Deno.test("server.ts --help and --version print to stdout and exit 0", async () => {
  await using help = new Program("server.ts", ["--help"]);
  assert.equal(await help.exit(), 0);
  const text = (await help.stdout.rest()).join("\n");
  for (const flag of ["--host", "--port", "--relay", "--max-clients", "--tls-cert", "Examples:"]) {
    assert.ok(text.includes(flag), flag);
  }
  await using version = new Program("server.ts", ["-V"]);
  assert.equal(await version.exit(), 0);
  assert.match((await version.stdout.rest())[0], /^charla server \d+\.\d+\.\d+$/);
});

Deno.test("client.ts reports a refused connection in one line and exits 1", async () => {
  const port = freePort();
  await using cli = new Program("client.ts", ["--port", String(port)]);
  assert.equal(await cli.exit(), 1);
  assert.deepEqual(await cli.stderr.rest(), [
    `charla client: cannot connect to 127.0.0.1:${port}: connection refused`,
  ]);
});

Deno.test("client.ts rejects bad flags with exit code 2", async () => {
  for (
    const [args, message] of [
      [
        ["127.0.0.1", "70000"],
        'charla client: invalid port "70000": must be a number from 1 to 65535',
      ],
      [
        ["--timeout", "-1"],
        'charla client: option --timeout needs a value (for one that starts with "-", write --timeout=-…)',
      ],
      [
        ["--timeout=-1"],
        'charla client: invalid --timeout "-1": must be a number of seconds of at least 0.001',
      ],
      [
        ["--timeout", "soon"],
        'charla client: invalid --timeout "soon": must be a number of seconds of at least 0.001',
      ],
      [["--name", "a b"], /^charla client: invalid --name "a b": /],
      // As `deno task client -- --name "a b"` runs it: the flags after "--" are flags.
      [["--", "--name", "a b"], /^charla client: invalid --name "a b": /],
      [["-H", "x", "y"], "charla client: give the host once: as an argument or with --host"],
      [["-p", "0"], 'charla client: invalid --port "0": must be a number from 1 to 65535'],
      [["--ca", "ca.pem"], "charla client: --ca needs --tls"],
      [["--unix", "/tmp/x", "--tls"], "charla client: --unix cannot be used with --tls"],
    ] as [string[], string | RegExp][]
  ) {
    await using cli = new Program("client.ts", args);
    assert.equal(await cli.exit(), 2, args.join(" "));
    const err = await cli.stderr.rest();
    if (typeof message === "string") assert.equal(err[0], message);
    else assert.match(err[0], message);
  }
});

Deno.test("client.ts with piped input sends every line, half-closes, exits 0 when the server closes", async () => {
  const { program: srv, port } = await server();
  await using _srv = srv;
  await using cli = new Program("client.ts", ["-p", String(port)]);
  await cli.write("a\nb\nsin salto");
  await cli.closeStdin();
  // The server logs all three lines, then the client leaving at its end of input.
  const log = await srv.stdout.until(/left/);
  assert.deepEqual(log.slice(1).map((l) => l.slice(9)), [
    "[#1 user1] a",
    "[#1 user1] b",
    "[#1 user1] sin salto",
    "* #1 user1 left",
  ]);
  assert.equal(await cli.exit(), 0);
  assert.deepEqual(await cli.stdout.rest(), [
    "* welcome, you are user1",
    "* you are talking with the operator of this server; /help lists commands",
  ]);
});

Deno.test("client.ts chats with a plain line peer, as with ncat -l", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await using cli = new Program("client.ts", [String("127.0.0.1"), String(listener.addr.port)]);
  const peer = await within(listener.accept(), "the client to connect");
  const lines = new LineReader(peer);
  await peer.write(new TextEncoder().encode("hola desde ncat\r\n\x1b[31mrojo\n"));
  assert.equal(await cli.stdout.next(), "hola desde ncat");
  assert.equal(await cli.stdout.next(), "^[[31mrojo");
  await cli.write("hola desde charla\n");
  assert.equal(await lines.next(), "hola desde charla");
  peer.close();
  assert.equal(await cli.exit(), 0);
});

Deno.test("two client.ts processes chat in a room through server.ts --relay", async () => {
  const { program: srv, port } = await server("--relay");
  await using _srv = srv;
  await using ana = new Program("client.ts", ["-p", String(port), "--name", "ana"]);
  assert.equal((await ana.stdout.until(/^\* you are now/)).at(-1), "* you are now ana");
  await using bea = new Program("client.ts", ["-p", String(port), "-n", "Bea"]);
  assert.equal((await bea.stdout.until(/^\* you are now/)).at(-1), "* you are now Bea");
  await ana.stdout.until("* user2 is now Bea");
  await ana.write("¡hola Bea! 你好\n");
  assert.equal((await bea.stdout.until(/^<ana>/)).at(-1), "<ana> ¡hola Bea! 你好");
  await bea.write("/msg ana solo para ti\n");
  assert.equal((await ana.stdout.until(/^\*Bea\*/)).at(-1), "*Bea* solo para ti");
  // A taken name is refused clearly, and the client keeps its default name.
  await using eva = new Program("client.ts", ["-p", String(port), "--name", "ANA"]);
  assert.equal(
    (await eva.stdout.until(/taken/)).at(-1),
    '* error: the name "ANA" is taken; you are still user3',
  );
  await bea.write("/quit adiós\n");
  assert.equal((await ana.stdout.until(/left/)).at(-1), "* Bea left (quit: adiós)");
  assert.equal(await bea.exit(), 0);
});
