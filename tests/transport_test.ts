/**
 * TLS, Unix sockets, IPv6, reconnecting, and what shutdown delivers: mostly
 * with the real programs, as a user runs them.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { ChatServer } from "../lib/chat_server.ts";
import { ChatClient, type ClientResult, connect, ConnectError } from "../lib/client/chat_client.ts";
import { listen } from "../lib/net/listen.ts";
import {
  LineReader,
  MemoryLog,
  Program,
  startServer,
  TestClient,
  tlsVisit,
  within,
} from "./_helpers.ts";

const fixtures = new URL("./fixtures/", import.meta.url);
const fixture = (name: string) => new URL(name, fixtures).pathname;
const READ = `--allow-read=${fixtures.pathname}`;

/** Starts server.ts with these arguments; returns it with the address it printed. */
async function server(args: string[], permissions: string[] = []) {
  const program = new Program("server.ts", args, permissions);
  const first = (await program.stdout.next("the listening line")) ?? "";
  assert.match(first, /^listening on /);
  return { program, address: first.slice("listening on ".length) };
}

/** A port nobody listens on. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A TLS chat server on 127.0.0.1:0 with the test certificate. */
async function tlsServer(options: { handshakeTimeout?: number } = {}) {
  const listener = await listen({
    port: 0,
    certFile: fixture("server.pem"),
    keyFile: fixture("server-key.pem"),
  });
  const log = new MemoryLog();
  const server = new ChatServer(listener, { log, ...options });
  return {
    server,
    log,
    port: (listener.addr as Deno.NetAddr).port,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

Deno.test("TLS: client.ts --tls --ca chats with server.ts --tls-cert --tls-key", async () => {
  const { program: srv, address } = await server([
    "--port",
    "0",
    "--tls-cert",
    fixture("server.pem"),
    "--tls-key",
    fixture("server-key.pem"),
  ], [READ]);
  await using _srv = srv;
  const port = address.split(":").at(-1)!;
  await using cli = new Program(
    "client.ts",
    ["--tls", "--ca", fixture("ca.pem"), "-H", "localhost", "-p", port],
    [READ],
  );
  assert.equal(await cli.stdout.next(), "* welcome, you are user1");
  await cli.write("hola por TLS\n");
  assert.match((await srv.stdout.until(/por TLS/)).at(-1)!, /\[#1 user1\] hola por TLS$/);
  await srv.write("y de vuelta\n");
  assert.equal((await cli.stdout.until(/^<server>/)).at(-1), "<server> y de vuelta");
});

Deno.test("TLS: server.ts --tls-self-signed prints a fingerprint; client.ts --fingerprint pins it", async () => {
  const { program: srv, address } = await server(
    ["--relay", "--port", "0", "--tls-self-signed"],
    ["--allow-run=openssl"],
  );
  await using _srv = srv;
  const said = await srv.stdout.next("the fingerprint line");
  const fingerprint = /--fingerprint ([0-9A-F:]{95})$/.exec(said ?? "")?.[1];
  assert.ok(fingerprint, `no fingerprint in: ${said}`);
  const port = address.split(":").at(-1)!;
  {
    // Any name or address of the machine: the pin is what is checked, not the name.
    await using cli = new Program("client.ts", ["--fingerprint", fingerprint, "-p", port]);
    assert.equal((await cli.stdout.until(/^\* welcome/)).at(-1), "* welcome, you are user2");
    await cli.write("hola, fijado\n");
    assert.match((await srv.stdout.until(/fijado/)).at(-1)!, /\[#lobby user2\] hola, fijado$/);
  }
  // Another certificate's fingerprint (one hex digit changed): refused before a word is sent.
  const other = (fingerprint[0] === "0" ? "1" : "0") + fingerprint.slice(1);
  await using wrong = new Program("client.ts", ["--fingerprint", other, "-p", port]);
  assert.equal(await wrong.exit(), 1);
  assert.match(
    (await wrong.stderr.until(/cannot connect/)).at(-1)!,
    new RegExp(
      `the server's certificate is not the pinned one: its fingerprint is ${fingerprint}$`,
    ),
  );
});

Deno.test("TLS: --tls-self-signed without --allow-run=openssl says what to add, and exits 1", async () => {
  await using srv = new Program("server.ts", ["--port", "0", "--tls-self-signed"]);
  assert.equal(await srv.exit(), 1);
  assert.equal(
    await srv.stderr.next(),
    "charla server: running openssl needs --allow-run=openssl",
  );
});

Deno.test("TLS: a client that trusts another CA is refused, on both sides, clearly", async () => {
  await using t = await tlsServer();
  const caCerts = [await Deno.readTextFile(fixture("other-ca.pem"))];
  await assert.rejects(
    connect({ hostname: "localhost", port: t.port, tls: true, caCerts }),
    (e: Error) =>
      e instanceof ConnectError &&
      e.message ===
        `cannot connect to localhost:${t.port}: TLS certificate not accepted ` +
          "(invalid peer certificate: UnknownIssuer); is --ca the authority that signed it?",
  );
  await t.log.until(() => t.log.of("refused").length === 1, "the refusal");
  assert.match(t.log.of("refused")[0].reason, /^TLS handshake failed: .*UnknownCA/);
  assert.equal(t.server.clientCount, 0);
});

Deno.test("TLS: a plain-TCP client to a TLS server fails cleanly; the server goes on", async () => {
  await using t = await tlsServer();
  const plain = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
  await plain.write(new TextEncoder().encode("hola\n"));
  const rest = await new LineReader(plain).rest(); // a TLS alert, then the end
  assert.ok(!rest.some((l) => l.includes("welcome")));
  plain.close();
  await t.log.until(() => t.log.of("refused").length === 1, "the refusal");
  assert.match(t.log.of("refused")[0].reason, /^TLS handshake failed: /);
  // A proper TLS client still gets in.
  assert.equal((await tlsVisit(t.port, fixture("ca.pem")))[0], "* welcome, you are user1");
});

Deno.test("TLS: a client that never starts its handshake is closed after the timeout", async () => {
  await using t = await tlsServer({ handshakeTimeout: 200 });
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
  await t.log.until(() => t.log.of("refused").length === 1, "the handshake timeout");
  assert.deepEqual(t.log.of("refused").map((e) => e.reason), ["handshake timed out"]);
  // The server's socket is really closed: the client reads the end of input.
  // (With Deno.listenTls it stayed open until the client left: see tls_server.ts.)
  assert.equal(await within(silent.read(new Uint8Array(8)), "the end of input"), null);
  silent.close();
});

Deno.test("TLS: a TLS client to a plain server fails with a clear error", async () => {
  await using t = startServer();
  const caCerts = [await Deno.readTextFile(fixture("ca.pem"))];
  await assert.rejects(
    connect({ hostname: "localhost", port: t.port, tls: true, caCerts }),
    (e: Error) =>
      e instanceof ConnectError &&
      /^cannot connect to localhost:\d+: TLS handshake failed \(.+\); is the server using TLS\?$/
        .test(e.message),
  );
});

Deno.test("TLS: server.ts without read permission for its certificate says so and exits 1", async () => {
  await using srv = new Program("server.ts", [
    "--port",
    "0",
    "--tls-cert",
    fixture("server.pem"),
    "--tls-key",
    fixture("server-key.pem"),
  ]);
  assert.equal(await srv.exit(), 1);
  assert.deepEqual(await srv.stderr.rest(), [
    `charla server: cannot read the TLS certificate "${fixture("server.pem")}": ` +
    "reading it needs --allow-read",
  ]);
});

Deno.test("Unix socket: client.ts --unix chats with server.ts --unix, which cleans up", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/charla.sock`;
  try {
    const rw = [`--allow-read=${dir}`, `--allow-write=${dir}`];
    const { program: srv, address } = await server(["--unix", path, "--relay"], rw);
    await using _srv = srv;
    assert.equal(address, `unix:${path}`);
    await using ana = new Program("client.ts", ["--unix", path, "--name", "ana"], rw);
    await ana.stdout.until("* you are now ana");
    await using bea = new Program("client.ts", ["--unix", path], rw);
    await bea.stdout.until("* you are in #lobby, with ana");
    await ana.write("hola por un socket local\n");
    assert.equal((await bea.stdout.until(/^<ana>/)).at(-1), "<ana> hola por un socket local");
    srv.child.kill("SIGTERM");
    assert.equal(await srv.exit(), 0);
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Unix socket: a stale socket file is replaced; a live one is an error", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/charla.sock`;
  try {
    // A process that dies without closing its listener leaves the file behind.
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} }); Deno.exit(0)`,
      ],
    }).output();
    assert.equal(code, 0);
    assert.ok((await Deno.lstat(path)).isSocket);
    const rw = [`--allow-read=${dir}`, `--allow-write=${dir}`];
    const { program: live } = await server(["--unix", path], rw);
    await using _live = live;
    await using second = new Program("server.ts", ["--unix", path], rw);
    assert.equal(await second.exit(), 1);
    assert.deepEqual(await second.stderr.rest(), [
      `charla server: cannot listen on "unix:${path}": another server is listening there`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IPv6: server.ts --host ::1 and client.ts -H ::1", async () => {
  const { program: srv, address } = await server(["--host", "::1", "--port", "0"]);
  await using _srv = srv;
  const match = /^\[::1\]:(\d+)$/.exec(address);
  assert.ok(match, address);
  await using cli = new Program("client.ts", ["-H", "::1", "-p", match[1]]);
  assert.equal(await cli.stdout.next(), "* welcome, you are user1");
  assert.match((await srv.stdout.next())!, / \* #1 user1 connected from \[::1\]:\d+$/);
});

Deno.test("--reconnect: lines typed while the server is down arrive once it is back", async () => {
  const port = String(freePort());
  const first = await server(["--port", port]);
  await using cli = new Program("client.ts", ["--reconnect", "-p", port]);
  await cli.stdout.until(/^\* welcome/);
  await cli.write("antes\n");
  await first.program.stdout.until(/antes$/);
  first.program.child.kill("SIGKILL");
  await first.program.exit();
  await first.program[Symbol.asyncDispose]();
  await cli.stderr.until(/^charla: reconnecting in \d+\.\d s$/);
  await cli.write("durante 1\ndurante 2\n");
  const second = await server(["--port", port]);
  await using _second = second.program;
  await cli.stderr.until(`charla: connected to 127.0.0.1:${port}`);
  const log = await second.program.stdout.until(/durante 2$/);
  assert.deepEqual(log.filter((l) => l.includes("durante")).map((l) => l.slice(9)), [
    "[#1 user1] durante 1",
    "[#1 user1] durante 2",
  ]);
  await cli.write("después\n");
  const rest = await second.program.stdout.until(/después$/);
  assert.ok(!rest.some((l) => l.includes("durante")), "a line was sent twice");
});

/**
 * Connects a ChatClient to a server that accepts and never reads, types until
 * the client holds lines back (past its mark, ready() asks the typist to wait),
 * then lets the server end the connection with `end`. Returns how the client's
 * run ended and how many lines were typed.
 */
async function typeIntoDeafServer(
  end: (peer: Deno.TcpConn) => Promise<void>,
): Promise<{ result: ClientResult; typed: number }> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = new ChatClient({ port: listener.addr.port }, {
    open: () => ({ line() {}, overlong() {}, flush() {} }),
  });
  const running = client.run();
  const peer = await within(listener.accept(), "the client");
  const line = new TextEncoder().encode("x".repeat(999) + "\n");
  let typed = 0;
  while (client.ready() === undefined) {
    for (let i = 0; client.connected && i < 100; i++) {
      assert.ok(client.send(line));
      typed++;
    }
    // Let the writes (and the connection) make progress.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await end(peer);
  const result = await within(running, "the client to stop");
  try {
    peer.close();
  } catch {
    // `end` closed it already.
  }
  return { result, typed };
}

Deno.test("ChatClient counts the lines a lost connection never sent", async () => {
  const { result, typed } = await typeIntoDeafServer((peer) => Promise.resolve(peer.close()));
  // The server went away: in order (its kernel sent FIN) or not (RST).
  assert.match(result.end, /^(closed|lost)$/);
  assert.ok(result.unsent > 0 && result.unsent < typed, `${result.unsent} of ${typed}`);
});

Deno.test("ChatClient counts the lines never sent when the server ends in order", async () => {
  // The server half-closes without reading: the client reads end of input while
  // its queue still holds lines.
  const { result, typed } = await typeIntoDeafServer((peer) => peer.closeWrite());
  assert.equal(result.end, "closed");
  assert.ok(result.unsent > 0 && result.unsent < typed, `${result.unsent} of ${typed}`);
});

Deno.test("client.ts says the connection was lost and exits 1 when the server resets it", async () => {
  // A server that resets the connection as soon as the client says something.
  const server = net.createServer((socket) => socket.once("data", () => socket.resetAndDestroy()));
  const listening = Promise.withResolvers<void>();
  server.listen(0, "127.0.0.1", () => listening.resolve());
  await listening.promise;
  try {
    const port = (server.address() as net.AddressInfo).port;
    await using cli = new Program("client.ts", ["-p", String(port)]);
    await cli.stderr.until(/connected/);
    await cli.write("hola\n");
    assert.equal(await cli.exit(), 1);
    assert.deepEqual(await cli.stderr.rest(), ["charla: connection lost"]);
  } finally {
    const closed = Promise.withResolvers<void>();
    server.close(() => closed.resolve());
    await closed.promise;
  }
});

Deno.test("SIGTERM: lines queued for a client that is behind are all delivered before exit", async () => {
  const { program: srv, address } = await server(["--port", "0", "--relay", "--send-queue", "64M"]);
  await using _srv = srv;
  const port = Number(address.split(":").at(-1));
  await using reader = await TestClient.connect(port); // reads nothing until the end
  await using sender = await TestClient.connect(port);
  const count = 80_000; // 8 MB: more than the socket buffers hold
  for (let n = 0; n < count; n += 1000) {
    await sender.send(...Array.from({ length: 1000 }, (_, k) => `n${n + k} ${"z".repeat(90)}`));
  }
  // A client's lines are handled in order: once the reply to this arrives,
  // every line before it is queued for the reader.
  await sender.send("/whois user1");
  await sender.lines.until(/^\* user1 \(#1\)/);
  srv.child.kill("SIGTERM");
  // The server writes what is left of its log before it exits: read it.
  const log = srv.stdout.rest();
  const got = (await reader.lines.rest()).filter((l) => l.startsWith("<user2> "));
  assert.equal(got.length, count);
  assert.equal(got.at(-1), `<user2> n${count - 1} ${"z".repeat(90)}`);
  assert.equal(await srv.exit(), 0);
  await log;
});

Deno.test("a second SIGINT while draining exits at once with 130", async () => {
  const { program: srv, address } = await server([
    "--port",
    "0",
    "--relay",
    "--send-queue",
    "64M",
    "--drain-timeout",
    "60",
  ]);
  await using _srv = srv;
  const port = Number(address.split(":").at(-1));
  await using stalled = await TestClient.connect(port); // never reads: the drain would take 60 s
  await using sender = await TestClient.connect(port);
  const logged = srv.stdout.until(/n7999 w+$/);
  for (let n = 0; n < 80; n++) {
    await sender.send(
      ...Array.from({ length: 100 }, (_, k) => `n${n * 100 + k} ${"w".repeat(990)}`),
    );
  }
  await logged; // 8 MB queued for the stalled client
  srv.child.kill("SIGINT");
  await sender.lines.until("* server shutting down"); // the first one was handled
  srv.child.kill("SIGINT");
  assert.equal(await srv.exit(), 130);
  assert.equal(stalled.name, "user1");
});
