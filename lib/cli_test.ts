import assert from "node:assert/strict";
import {
  conflicts,
  formatBytes,
  MAX_LINE_LIMIT,
  parseBytes,
  parseFlags,
  parsePort,
  problemLine,
  requires,
  UsageError,
  usageText,
} from "./cli.ts";

const SPEC = {
  host: { type: "string", short: "H" },
  name: { type: "string", short: "n" },
  tls: { type: "boolean" },
  allow: { type: "string", multiple: true },
} as const;

Deno.test("parseFlags() drops one leading -- (what `deno task client -- …` passes)", () => {
  const { values, positionals } = parseFlags(["--", "--name", "ana", "-H", "::1"], SPEC);
  assert.deepEqual({ ...values }, { name: "ana", host: "::1" });
  assert.deepEqual(positionals, []);
});

Deno.test("parseFlags() keeps any other -- as the end of the options", () => {
  // A second leading --: the first is dropped, the second ends the options.
  let parsed = parseFlags(["--", "--", "--name", "ana"], SPEC);
  assert.deepEqual({ ...parsed.values }, {});
  assert.deepEqual(parsed.positionals, ["--name", "ana"]);
  // A -- after a flag or an argument ends the options, as always.
  parsed = parseFlags(["--tls", "--", "-n"], SPEC);
  assert.deepEqual({ ...parsed.values }, { tls: true });
  assert.deepEqual(parsed.positionals, ["-n"]);
  parsed = parseFlags(["host", "--", "--tls"], SPEC);
  assert.deepEqual(parsed.positionals, ["host", "--tls"]);
  // A flag value of "--" is a value, not the end of the options.
  assert.equal(parseFlags(["--name=--"], SPEC).values.name, "--");
});

Deno.test("parseFlags() explains its errors in one lowercase line", () => {
  const cases: [string[], string][] = [
    [["--nope"], 'unknown option "--nope"'],
    [["--", "--nope"], 'unknown option "--nope"'],
    [["--name"], "option --name needs a value"],
    [["--tls=yes"], "option --tls takes no value"],
    [
      ["--name", "-x"],
      'option --name needs a value (for one that starts with "-", write --name=-…)',
    ],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseFlags(args, SPEC), { name: "UsageError", message }, args.join(" "));
  }
});

Deno.test("parsePort() takes 0 to 65535, or from min, and says the range it wants", () => {
  assert.equal(parsePort("0"), 0);
  assert.equal(parsePort("65535"), 65535);
  assert.equal(parsePort("1", "--port", { min: 1 }), 1);
  for (const text of ["65536", "99999", "-1", "abc", "", "1e3", "123456"]) {
    assert.throws(() => parsePort(text), {
      message: `invalid --port "${text}": must be a number from 0 to 65535`,
    });
  }
  assert.throws(() => parsePort("0", "port", { min: 1 }), {
    message: 'invalid port "0": must be a number from 1 to 65535',
  });
});

Deno.test("parseBytes() reads K, M, G suffixes and refuses counts over its maximum", () => {
  assert.equal(parseBytes("65536", "--max-line"), 65536);
  assert.equal(parseBytes("64K", "--max-line"), 65536);
  assert.equal(parseBytes("64kib", "--max-line"), 65536);
  assert.equal(parseBytes("1M", "--max-line"), 1024 ** 2);
  assert.equal(parseBytes("10G", "--send-queue"), 10 * 1024 ** 3);
  const max = { max: MAX_LINE_LIMIT };
  assert.equal(parseBytes("16M", "--max-line", max), MAX_LINE_LIMIT);
  assert.equal(parseBytes(String(MAX_LINE_LIMIT), "--max-line", max), MAX_LINE_LIMIT);
  for (const text of ["10G", "16385K", String(MAX_LINE_LIMIT + 1), "0", "x", "1T"]) {
    assert.throws(() => parseBytes(text, "--max-line", max), {
      message:
        `invalid --max-line "${text}": must be a byte count from 1 to 16M, such as 65536, 64K or 1M`,
    });
  }
});

Deno.test("parseBytes() takes a bare number as the minimum, as it did before options", () => {
  assert.equal(parseBytes("1K", "--send-queue", 1024), 1024);
  assert.throws(() => parseBytes("1000", "--send-queue", 1024), {
    message: 'invalid --send-queue "1000": must be a byte count of at least 1K, such as 65536, ' +
      "64K or 1M",
  });
  assert.throws(() => parseBytes("1000", "--send-queue", { min: 1024, max: 2048 }), {
    message: 'invalid --send-queue "1000": must be a byte count from 1K to 2K, such as 65536, ' +
      "64K or 1M",
  });
});

Deno.test("formatBytes() writes whole multiples with a suffix, others as they are", () => {
  assert.deepEqual(
    [1, 1000, 1024, 1536, 65536, 1024 ** 2, 3 * 1024 ** 3].map(formatBytes),
    ["1", "1000", "1K", "1536", "64K", "1M", "3G"],
  );
});

Deno.test("conflicts() names the first pair given together, in the order written", () => {
  const pairs = [["unix", "tls-cert"], ["unix", "host"], ["tls", "unix"]] as const;
  assert.throws(() => conflicts({ unix: "/s", host: "h" }, pairs), {
    name: "UsageError",
    message: "--unix cannot be used with --host",
  });
  assert.throws(() => conflicts({ unix: "/s", "tls-cert": "c", host: "h" }, pairs), {
    message: "--unix cannot be used with --tls-cert",
  });
  assert.throws(() => conflicts({ tls: true, unix: "/s" }, [["tls", "unix"]]), {
    message: "--tls cannot be used with --unix",
  });
  // Not given: undefined, false, or an empty list from a `multiple` flag.
  conflicts({ unix: "/s", tls: false, allow: [], host: undefined }, [
    ["unix", "tls"],
    ["unix", "allow"],
    ["unix", "host"],
  ]);
  assert.throws(() => conflicts({ unix: "/s", allow: ["10.0.0.0/8"] }, [["unix", "allow"]]), {
    message: "--unix cannot be used with --allow",
  });
});

Deno.test("requires() refuses a flag given without the one it needs, and only then", () => {
  assert.throws(() => requires({ "tls-cert": "c.pem" }, "tls-cert", "tls-key"), {
    name: "UsageError",
    message: "--tls-cert needs --tls-key",
  });
  assert.throws(() => requires({ ca: "ca.pem", tls: false }, "ca", "tls"), {
    message: "--ca needs --tls",
  });
  requires({ "tls-cert": "c.pem", "tls-key": "k.pem" }, "tls-cert", "tls-key");
  requires({ "tls-key": "k.pem" }, "tls-cert", "tls-key");
  requires({}, "tls-cert", "tls-key");
});

Deno.test("UsageError lowers a sentence's capital, but not an acronym's", () => {
  assert.equal(new UsageError('Invalid --deny "x": bad').message, 'invalid --deny "x": bad');
  assert.equal(new UsageError("TLS needs both").message, "TLS needs both");
  assert.equal(new UsageError("IPv6 only").message, "IPv6 only");
  assert.equal(new UsageError("A client").message, "a client");
  assert.equal(new UsageError("É raro").message, "é raro");
  assert.equal(new UsageError("--tls-cert needs --tls-key").message, "--tls-cert needs --tls-key");
});

Deno.test("problemLine() and usageText() give every message the same prefix and shape", () => {
  assert.equal(
    problemLine("server", 'Cannot listen on "127.0.0.1:5000": the address is in use'),
    'charla server: cannot listen on "127.0.0.1:5000": the address is in use',
  );
  assert.equal(
    problemLine("client", "cannot connect to 127.0.0.1:5000: connection refused"),
    "charla client: cannot connect to 127.0.0.1:5000: connection refused",
  );
  assert.equal(
    usageText("server", new UsageError('invalid --port "99999": must be a number from 0 to 65535')),
    'charla server: invalid --port "99999": must be a number from 0 to 65535\n' +
      "Try 'server.ts --help' for more information.",
  );
});
