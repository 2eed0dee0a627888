/**
 * `deno task cert` and the certificates of lib/net/make_cert.ts, checked with
 * the real openssl and Deno's own TLS on 127.0.0.1 and ::1: a certificate is good
 * when `Deno.listenTls` serves it and `Deno.connectTls` accepts it.
 */

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  certificateFingerprint,
  makeCertificates,
  makeSelfSigned,
  subjectAltName,
} from "../lib/net/make_cert.ts";
import { connectPinned, parseFingerprint, PinError } from "../lib/net/tls_pin.ts";
import { within } from "./_helpers.ts";

const root = new URL("..", import.meta.url);
const decoder = new TextDecoder();

/** Runs `deno task cert …` as a user would, with the task's own permissions. */
async function certTask(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "cert", ...args],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    out: decoder.decode(output.stdout),
    err: decoder.decode(output.stderr),
  };
}

/**
 * Serves `cert`/`key` on `hostname` and connects to it by `name` (which must
 * resolve to that address) trusting `ca`; resolves with null when the client
 * accepted the certificate, or the client's error message.
 */
async function tryTls(
  { cert, key, ca }: { cert: string; key: string; ca: string },
  hostname: string,
  name: string,
): Promise<string | null> {
  using listener = Deno.listenTls({ hostname, port: 0, cert, key });
  const served = (async () => {
    using conn = await listener.accept();
    // The server's side fails too when the client refuses: that is expected here.
    await conn.handshake().catch(() => {});
  })();
  let problem: string | null = null;
  try {
    using conn = await Deno.connectTls({ hostname: name, port: listener.addr.port, caCerts: [ca] });
    await conn.handshake();
  } catch (error) {
    problem = (error as Error).message;
  }
  await within(served, "the server's side of the handshake");
  return problem;
}

async function readSet(dir: string) {
  return {
    ca: await Deno.readTextFile(`${dir}/ca.pem`),
    cert: await Deno.readTextFile(`${dir}/server.pem`),
    key: await Deno.readTextFile(`${dir}/server-key.pem`),
  };
}

Deno.test("deno task cert: Deno's TLS accepts the certificate for each name given, and no other", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { code, out, err } = await certTask("--out", `${dir}/tls`, "localhost", "127.0.0.1");
    assert.equal(code, 0, err);
    const set = await readSet(`${dir}/tls`);
    assert.equal(await tryTls(set, "127.0.0.1", "localhost"), null);
    assert.equal(await tryTls(set, "127.0.0.1", "127.0.0.1"), null);
    // ::1 was not given: the same certificate, served there, is refused for its name.
    assert.match(await tryTls(set, "::1", "::1") ?? "accepted", /not valid for name "::1"/);
    // The key is the owner's alone; the certificates are for anyone to read.
    assert.equal((await Deno.stat(`${dir}/tls/server-key.pem`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/tls/ca.pem`)).mode! & 0o777, 0o644);
    // The authority's key is not left anywhere in the folder.
    const names = [];
    for await (const entry of Deno.readDir(`${dir}/tls`)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["ca.pem", "server-key.pem", "server.pem"]);
    // It prints the two command lines that use what it wrote.
    const lines = out.split("\n").map((line) => line.trim());
    assert.ok(
      lines.includes(
        `deno run --allow-net --allow-read server.ts --relay --tls-cert ${dir}/tls/server.pem ` +
          `--tls-key ${dir}/tls/server-key.pem`,
      ),
      out,
    );
    assert.ok(
      lines.includes(
        `deno run --allow-net --allow-read client.ts --tls --ca ${dir}/tls/ca.pem -H localhost -p 5000`,
      ),
      out,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task cert: by default the certificate is for localhost, 127.0.0.1 and ::1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { code, err } = await certTask("-o", dir);
    assert.equal(code, 0, err);
    const set = await readSet(dir);
    for (
      const [address, name] of [["127.0.0.1", "localhost"], ["127.0.0.1", "127.0.0.1"], [
        "::1",
        "::1",
      ]]
    ) {
      assert.equal(await tryTls(set, address, name), null, name);
    }
    const x509 = new X509Certificate(set.cert);
    assert.equal(
      x509.subjectAltName,
      "DNS:localhost, IP Address:127.0.0.1, IP Address:::1",
    );
    assert.equal(x509.ca, false);
    assert.ok(new X509Certificate(set.ca).ca);
    assert.ok(x509.verify(new X509Certificate(set.ca).publicKey), "signed by the authority");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task cert refuses to replace files without --force, and replaces them with it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/server.pem`, "mine");
    const refused = await certTask("--out", dir);
    assert.equal(refused.code, 1);
    assert.equal(
      refused.err,
      `charla cert: "${dir}/server.pem" already exists: pass --force to replace it, or choose ` +
        "another --out\n",
    );
    // Nothing was written, not even the files that did not exist.
    assert.equal(await Deno.readTextFile(`${dir}/server.pem`), "mine");
    await assert.rejects(Deno.stat(`${dir}/ca.pem`), Deno.errors.NotFound);

    await Deno.chmod(`${dir}/server.pem`, 0o666);
    await Deno.writeTextFile(`${dir}/server-key.pem`, "old key", { mode: 0o644 });
    const forced = await certTask("--out", dir, "--force");
    assert.equal(forced.code, 0, forced.err);
    assert.match(await Deno.readTextFile(`${dir}/server.pem`), /^-----BEGIN CERTIFICATE-----/);
    // A replaced key loses the old file's looser mode.
    assert.equal((await Deno.stat(`${dir}/server-key.pem`)).mode! & 0o777, 0o600);
    assert.equal(await tryTls(await readSet(dir), "127.0.0.1", "localhost"), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task cert rejects a bad command line with one line, the hint, and exit 2", async () => {
  const hint = "Try 'deno task cert --help' for more information.";
  for (
    const [args, message] of [
      [["bad name"], 'charla cert: invalid host "bad name": must be a DNS name or an IP address'],
      [
        ["a,DNS:evil"],
        'charla cert: invalid host "a,DNS:evil": must be a DNS name or an IP address',
      ],
      [
        ["fe80::1%eth0"],
        'charla cert: invalid host "fe80::1%eth0": must be a DNS name or an IP address',
      ],
      [["--days", "0"], 'charla cert: invalid --days "0": must be a whole number of at least 1'],
      [["--", "--out"], "charla cert: option --out needs a value"],
    ] as [string[], string][]
  ) {
    const { code, out, err } = await certTask(...args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(err, `${message}\n${hint}\n`);
    assert.equal(out, "");
  }
  const help = await certTask("--help");
  assert.equal(help.code, 0);
  assert.match(help.out, /openssl/);
});

Deno.test("subjectAltName() writes DNS and IP entries, once each, and refuses what is neither", () => {
  assert.equal(subjectAltName(["localhost"]), "DNS:localhost");
  assert.equal(
    subjectAltName(["*.chat.example", "LOCALHOST", "localhost", "::ffff:10.0.0.1", "[fe80::1]"]),
    "DNS:*.chat.example,DNS:localhost,IP:::ffff:10.0.0.1,IP:fe80::1",
  );
  for (const bad of ["", "a b", "a,b", "x/y", "-a.example", "1.2.3.999", "a..b", "*", "a=b"]) {
    assert.throws(() => subjectAltName([bad]), TypeError, bad);
  }
  assert.throws(() => subjectAltName([]), TypeError);
});

Deno.test("certificateFingerprint() agrees with openssl x509 -fingerprint -sha256", async () => {
  const path = new URL("./fixtures/server.pem", import.meta.url).pathname;
  const output = await new Deno.Command("openssl", {
    args: ["x509", "-in", path, "-noout", "-fingerprint", "-sha256"],
    stdout: "piped",
  }).output();
  const expected = decoder.decode(output.stdout).trim().split("=")[1];
  assert.equal(await certificateFingerprint(await Deno.readTextFile(path)), expected);
  assert.equal(parseFingerprint(expected.toLowerCase().replaceAll(":", "")), expected);
});

Deno.test("makeCertificates() returns PEM that Deno's TLS accepts, without touching --out", async () => {
  const set = await makeCertificates(["localhost"], { days: 1 });
  assert.equal(await tryTls({ ...set, ca: set.caCert }, "127.0.0.1", "localhost"), null);
  const x509 = new X509Certificate(set.cert);
  const days = (Date.parse(x509.validTo) - Date.parse(x509.validFrom)) / 86_400_000;
  assert.equal(Math.round(days), 1);
});

Deno.test("makeSelfSigned(): a client pinning its fingerprint connects; a wrong pin is refused", async () => {
  const self = await makeSelfSigned(["localhost", "127.0.0.1"]);
  assert.equal(self.fingerprint, await certificateFingerprint(self.cert));
  using listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: self.cert,
    key: self.key,
  });
  const target = { hostname: "127.0.0.1", port: listener.addr.port };
  // Each pinned connection is two handshakes (the probe, then the real one); the
  // refused one is the probe alone; the last client trusts nothing and fails.
  const served = (async () => {
    const lines: string[] = [];
    for (let i = 0; i < 4; i++) {
      using conn = await listener.accept();
      const buf = new Uint8Array(16);
      // The probe leaves without TLS's close_notify (Deno reports UnexpectedEof),
      // and the client that trusts nothing alerts instead of finishing the handshake.
      const n = await conn.read(buf).catch((error) => {
        if (
          error instanceof Deno.errors.UnexpectedEof || /UnknownCA/.test(error.message)
        ) {
          return null;
        }
        throw error;
      });
      if (n !== null) lines.push(decoder.decode(buf.subarray(0, n)));
    }
    return lines;
  })();

  {
    using conn = await connectPinned(target, self.fingerprint.toLowerCase());
    await conn.write(new TextEncoder().encode("hola\n"));
  }
  const wrong = parseFingerprint("00".repeat(32))!;
  await assert.rejects(connectPinned(target, wrong), (error: Error) => {
    assert.ok(error instanceof PinError);
    assert.equal(
      error.message,
      `the server's certificate is not the pinned one: its fingerprint is ${self.fingerprint}`,
    );
    return true;
  });
  await assert.rejects(connectPinned(target, "abcd"), TypeError);
  // Without a pin the certificate is refused as it should be: it is nobody's authority.
  await assert.rejects(async () => {
    using conn = await Deno.connectTls({ ...target, hostname: "localhost" });
    await conn.handshake();
  }, /UnknownIssuer/);
  assert.deepEqual(await within(served, "four connections"), ["hola\n"]);
});

Deno.test("makeSelfSigned() needs no permission but --allow-run=openssl, and writes no file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/self_signed.ts`;
    await Deno.writeTextFile(
      script,
      `import { makeSelfSigned } from ${
        JSON.stringify(new URL("../lib/net/make_cert.ts", import.meta.url).href)
      };\nconsole.log((await makeSelfSigned()).fingerprint);\n`,
    );
    const run = (...permissions: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", ...permissions, script],
        cwd: dir,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    const allowed = await run("--allow-run=openssl");
    assert.equal(allowed.code, 0, decoder.decode(allowed.stderr));
    assert.ok(parseFingerprint(decoder.decode(allowed.stdout)) !== null);
    const denied = await run();
    assert.notEqual(denied.code, 0);
    assert.match(decoder.decode(denied.stderr), /running openssl needs --allow-run=openssl/);
    // openssl left nothing behind (its default config would write privkey.pem here).
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names, ["self_signed.ts"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
