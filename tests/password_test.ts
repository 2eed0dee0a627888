/**
 * A server password (`--password-file`) with server.ts and client.ts spawned
 * as a user runs them: what an nc user reads, a wrong password, throttling,
 * and client.ts with and without the password; and the message of the day.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Bot } from "../lib/client/bot.ts";
import { ServerPassword } from "../lib/core/password.ts";
import { ircTransport } from "../lib/transports/irc.ts";
import {
  LoopbackClient,
  Program,
  startServer as startChat,
  TestClient,
  within,
} from "./_helpers.ts";

const ROOT = new URL("..", import.meta.url);
const REQUEST = "* this server needs a password: send /pass <password>";

/** A directory with `password` (mode 600) and `motd`, removed on dispose. */
function secrets(): { dir: string; password: string; motd: string } & Disposable {
  const dir = Deno.makeTempDirSync({ prefix: "charla_password_" });
  Deno.writeTextFileSync(`${dir}/password`, "contraseña s3creta\n", { mode: 0o600 });
  Deno.chmodSync(`${dir}/password`, 0o600);
  Deno.writeTextFileSync(`${dir}/motd`, "Bienvenidos a charla.\n\nSed amables.\n\n");
  return {
    dir,
    password: `${dir}/password`,
    motd: `${dir}/motd`,
    [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }),
  };
}

/** server.ts with the password and the message of the day; resolves once it listens. */
async function startServer(files: { dir: string; password: string; motd: string }) {
  const server = new Program("server.ts", [
    "-r",
    "-p",
    "0",
    "--password-file",
    files.password,
    "--motd",
    files.motd,
  ], [`--allow-read=${files.dir}`]);
  const first = await server.stdout.next("the listening line");
  const port = Number(/^listening on 127\.0\.0\.1:(\d+)$/.exec(first ?? "")?.[1]);
  assert.ok(port > 0, `server.ts did not start: ${first}`);
  return { server, port };
}

/** Runs client.ts with `args` and an empty stdin; its exit code and output. */
async function runClient(args: string[], permissions: string[]) {
  const out = await within(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", ...permissions, "client.ts", ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output(),
    `client.ts ${args.join(" ")}`,
  );
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("server.ts --password-file: nothing counts before /pass, the right one lets you in, and the message of the day follows the welcome", async () => {
  using files = secrets();
  const { server, port } = await startServer(files);
  await using _ = server;
  await using nc = await TestClient.raw(port);
  assert.equal(await nc.lines.next(), REQUEST);
  await nc.send("hola", "/nick ana", "/json");
  for (let i = 0; i < 3; i++) {
    assert.equal(await nc.lines.next(), "* error: send /pass <password> first");
  }
  // The lines after the password, in the same write, count once it is right.
  await nc.send("/pass contraseña s3creta", "/nick ana", "hola");
  assert.deepEqual(await nc.lines.until("* you are now ana"), [
    "* welcome, you are user1",
    "* Bienvenidos a charla.",
    "*",
    "* Sed amables.",
    "* you are in #lobby; nobody else is here",
    "* you are now ana",
  ]);
  await server.stdout.until(/\[#lobby ana\] hola$/);
  // A bot gives the password its own way, and reads the message of the day as an event.
  const events: string[] = [];
  await using bot = await Bot.connect({
    port,
    name: "eco",
    password: "contraseña s3creta",
    onEvent: (event) => {
      if (event.type === "motd") events.push(...event.lines);
    },
  });
  assert.equal(bot.name, "eco");
  assert.deepEqual(events, ["Bienvenidos a charla.", "", "Sed amables."]);
});

Deno.test("server.ts --password-file refuses a wrong password after a delay, closes, and logs it", async () => {
  using files = secrets();
  const { server, port } = await startServer(files);
  await using _ = server;
  await using nc = await TestClient.raw(port);
  assert.equal(await nc.lines.next(), REQUEST);
  const start = performance.now();
  await nc.send("/pass contraseña", "/nick ana");
  assert.deepEqual(await nc.lines.rest(), ["* wrong password"]);
  const waited = performance.now() - start;
  assert.ok(waited >= 900, `answered after ${waited} ms, not after the 1 s delay`);
  assert.match(
    (await server.stdout.until(/ ! refused /)).at(-1)!,
    /^\d\d:\d\d:\d\d ! refused 127\.0\.0\.1:\d+: wrong password$/,
  );
});

Deno.test("server.ts --password-file throttles an address after five wrong passwords, and only that address", async () => {
  using files = secrets();
  const { server, port } = await startServer(files);
  await using _ = server;
  const guessers = await Promise.all(
    Array.from({ length: 5 }, () => LoopbackClient.connect(port, "127.0.0.2")),
  );
  try {
    for (const guesser of guessers) assert.equal(await guesser.lines.next(), REQUEST);
    await Promise.all(guessers.map((guesser, i) => guesser.send(`/pass guess${i}`)));
    for (const guesser of guessers) {
      assert.deepEqual(await guesser.lines.rest(), ["* wrong password"]);
    }
  } finally {
    await Promise.all(guessers.map((guesser) => guesser.close()));
  }
  // Now even the right password is refused from there, at once, saying for how long.
  await using again = await LoopbackClient.connect(port, "127.0.0.2");
  assert.equal(await again.lines.next(), REQUEST);
  await again.send("/pass contraseña s3creta");
  const [refusal, ...rest] = await again.lines.rest();
  assert.match(refusal, /^\* too many wrong passwords; try again in (59|60) s$/);
  assert.deepEqual(rest, []);
  // Another address is not affected.
  await using other = await LoopbackClient.connect(port, "127.0.0.3");
  assert.equal(await other.lines.next(), REQUEST);
  await other.send("/pass contraseña s3creta");
  assert.equal(await other.lines.next(), "* welcome, you are user1");
});

Deno.test("client.ts --password-file gets in; a wrong password or none exits 3 saying why", async () => {
  using files = secrets();
  const { server, port } = await startServer(files);
  await using _ = server;
  const read = [`--allow-read=${files.dir}`];
  const right = await runClient(["-p", String(port), "--password-file", files.password], read);
  assert.equal(right.code, 0, right.stderr);
  assert.match(
    right.stdout,
    /^\* welcome, you are user\d+\n\* Bienvenidos a charla\.\n\*\n\* Sed amables\.\n\* you are in #lobby/,
  );
  assert.ok(!right.stdout.includes("needs a password"), "the request is answered, not shown");

  Deno.writeTextFileSync(`${files.dir}/wrong`, "contraseña\n");
  const wrong = await runClient(
    ["-p", String(port), "--password-file", `${files.dir}/wrong`],
    read,
  );
  assert.equal(wrong.code, 3);
  assert.equal(wrong.stdout, "* wrong password\n");

  // No file and no terminal to ask on.
  const none = await runClient(["-p", String(port)], []);
  assert.equal(none.code, 3);
  assert.equal(none.stdout, "");
  assert.match(none.stderr, /the server needs a password: give it with --password-file <file>/);

  const unreadable = await runClient(["-p", String(port), "--password-file", files.password], []);
  assert.equal(unreadable.code, 1);
  assert.match(
    unreadable.stderr,
    /cannot read --password-file ".*": reading it needs --allow-read/,
  );
});

Deno.test("server.ts refuses an empty password file and warns about one others can read", async () => {
  using files = secrets();
  Deno.writeTextFileSync(`${files.dir}/empty`, "\n");
  {
    await using server = new Program("server.ts", [
      "-r",
      "-p",
      "0",
      "--password-file",
      `${files.dir}/empty`,
    ], [
      `--allow-read=${files.dir}`,
    ]);
    assert.equal(await server.exit(), 1);
    assert.deepEqual(await server.stderr.rest(), [
      `charla server: --password-file "${files.dir}/empty" is empty`,
    ]);
  }
  Deno.chmodSync(files.password, 0o644);
  await using server = new Program("server.ts", [
    "-r",
    "-p",
    "0",
    "--password-file",
    files.password,
  ], [
    `--allow-read=${files.dir}`,
  ]);
  assert.equal(
    await server.stderr.next(),
    `charla server: warning: --password-file "${files.password}" can be read by other users; chmod 600 it`,
  );
  assert.match((await server.stdout.next())!, /^listening on /);
});

Deno.test("The password is one check for every transport: wrong ones over IRC lock the address out of the line port too; IRC shows the message of the day as its MOTD", async () => {
  await using t = startChat({
    relay: true,
    password: new ServerPassword("s3cret", { delayMs: 0, maxFailures: 2 }),
    motd: ["Bienvenidos a charla."],
  });
  const ircListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  t.server.serve(ircListener, ircTransport(t.server.core));
  const ircPort = ircListener.addr.port;
  for (const pass of ["PASS wrong", null]) {
    await using irc = await LoopbackClient.connect(ircPort, "127.0.0.2");
    await irc.send(...(pass === null ? [] : [pass]), "NICK ana", "USER ana 0 * :Ana");
    const [refusal] = await irc.lines.rest();
    assert.match(
      refusal,
      pass === null
        ? /^:charla 464 \* :This server needs a password \(PASS\)\r?$/
        : /^:charla 464 \* :Password incorrect\r?$/,
    );
  }
  await using line = await LoopbackClient.connect(t.port, "127.0.0.2");
  assert.equal(await line.lines.next(), REQUEST);
  await line.send("/pass s3cret");
  assert.match((await line.lines.rest())[0], /^\* too many wrong passwords; try again in \d+ s$/);
  assert.deepEqual(t.log.of("refused").map((e) => e.reason), [
    "wrong password",
    "wrong password",
    "too many wrong passwords",
  ]);
  // Another address is let in, over IRC as over the line port.
  await using other = await LoopbackClient.connect(ircPort, "127.0.0.3");
  await other.send("PASS s3cret", "NICK bea", "USER bea 0 * :Bea");
  const welcome = await other.lines.until(/^:charla 376 bea /);
  assert.match(welcome[0], /^:charla 001 bea :Welcome to charla, bea!/);
  // The message of the day is IRC's MOTD there, once.
  const motd = welcome.filter((l) => l.includes("Bienvenidos"));
  assert.deepEqual(motd.map((l) => l.trimEnd()), [":charla 372 bea :- Bienvenidos a charla."]);
  await other.send("PING :x");
  assert.equal((await other.lines.until(/PONG/)).some((l) => l.includes("Bienvenidos")), false);
});
