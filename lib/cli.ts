/**
 * Flag parsing shared by `server.ts` and `client.ts`: `node:util` `parseArgs`
 * with its errors turned into one clear line, checked flag values, and the one
 * shape every message about the command line takes.
 *
 * Every such message is a lowercase sentence fragment with values quoted, after
 * the program's prefix: `charla server: invalid --port "99999": must be a number
 * from 0 to 65535`. {@linkcode problemLine} and {@linkcode usageText} build it,
 * so both programs print the same shape.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";

/**
 * `message` as a sentence fragment: a capital first letter is lowered unless the
 * word is an acronym (`TLS`, `IPv6`), so `Invalid --deny "x"` and `Cannot listen …`
 * read like every other message.
 */
function fragment(message: string): string {
  return /^\p{Lu}(?![\p{Lu}\d])/u.test(message)
    ? message[0].toLowerCase() + message.slice(1)
    : message;
}

/** A command line that cannot be used as given: print it with the usage hint, exit 2. */
export class UsageError extends Error {
  /**
   * `message` is one line, such as `invalid --port "99999": must be a number from 0
   * to 65535`. A capital first letter is lowered (an acronym's is kept), so a
   * library error's sentence can be passed as it is.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(fragment(message), options);
    this.name = "UsageError";
  }
}

/**
 * Why a file named by a flag could not be read, in words for a problem line:
 * a missing `--allow-read` and a missing file say so; anything else is the
 * runtime's message.
 *
 * @example
 * ```ts
 * import { whyUnreadable } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(whyUnreadable(new Deno.errors.NotFound("gone")), "no such file");
 * ```
 */
export function whyUnreadable(error: unknown): string {
  return error instanceof Deno.errors.NotCapable
    ? "reading it needs --allow-read"
    : error instanceof Deno.errors.NotFound
    ? "no such file"
    : (error as Error).message;
}

/**
 * The line a program prints about a problem: `charla <program>: <message>`, the
 * message as a lowercase fragment. For usage errors (with {@linkcode usageText})
 * and for failures that end the program (a port in use, a refused connection).
 * `program` is `server`, `client` or `cert`.
 *
 * @example
 * ```ts
 * import { problemLine } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   problemLine("server", 'Cannot listen on "127.0.0.1:80": permission denied'),
 *   'charla server: cannot listen on "127.0.0.1:80": permission denied',
 * );
 * assert.equal(problemLine("client", "TLS handshake failed"), "charla client: TLS handshake failed");
 * ```
 */
export function problemLine(program: string, message: string): string {
  return `charla ${program}: ${fragment(message)}`;
}

/**
 * What a program prints for a {@linkcode UsageError} (to stderr, then exit 2):
 * the problem, and a hint to `--help` on the next line. `command` is how the
 * user runs the program, for the hint.
 *
 * @example
 * ```ts
 * import { usageText, UsageError } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   usageText("client", new UsageError("--tls-cert needs --tls-key")),
 *   "charla client: --tls-cert needs --tls-key\nTry 'client.ts --help' for more information.",
 * );
 * ```
 */
export function usageText(
  program: string,
  error: UsageError,
  command = `${program}.ts`,
): string {
  return `${problemLine(program, error.message)}\nTry '${command} --help' for more information.`;
}

/** The option table `parseArgs` takes. */
export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `args` with `parseArgs` (strict, positionals allowed), turning its
 * errors into a {@linkcode UsageError} with a short message.
 *
 * One leading `--` is dropped: `deno task client -- --name ana` passes the `--`
 * through to the program (Deno 2 does), and the user meant the flags after it as
 * flags. A `--` anywhere else, or a second one, still ends the options, so
 * `-- -- -x` reads `-x` as an argument.
 *
 * @example
 * ```ts
 * import { parseFlags, UsageError } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = { port: { type: "string", short: "p" } } as const;
 * assert.equal(parseFlags(["-p", "80"], spec).values.port, "80");
 * assert.equal(parseFlags(["--", "-p", "80"], spec).values.port, "80");
 * assert.throws(() => parseFlags(["--nope"], spec), UsageError);
 * ```
 */
export function parseFlags<const T extends OptionSpec>(
  args: string[],
  options: T,
): {
  values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: true }>>["values"];
  positionals: string[];
} {
  try {
    return parseArgs({
      args: args[0] === "--" ? args.slice(1) : args,
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(explainParseError(error), { cause: error });
  }
}

function explainParseError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  const option = /'([^']+)'/.exec(text)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option "${option}"`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const name = /--[\w-]+/.exec(text)?.[0] ?? option;
      if (text.includes("ambiguous")) {
        return `option ${name} needs a value (for one that starts with "-", write ${name}=-…)`;
      }
      return text.includes("argument missing")
        ? `option ${name} needs a value`
        : `option ${name} takes no value`;
    }
    default:
      return text;
  }
}

/** Parsed flag values, as {@linkcode parseFlags} returns them. */
export type FlagValues = Readonly<Record<string, unknown>>;

/** Whether a flag was given: a string, `true`, or a non-empty list. */
function given(values: FlagValues, flag: string): boolean {
  const value = values[flag];
  if (Array.isArray(value)) return value.length > 0;
  return value !== undefined && value !== false;
}

/**
 * Refuses flags that cannot be used together: the first pair of `pairs` that
 * were both given throws `--a cannot be used with --b`. Flags are named by their
 * long names, without dashes, as in the option table.
 *
 * @throws {UsageError} When both flags of a pair were given.
 *
 * @example
 * ```ts
 * import { conflicts } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * const values = { unix: "/tmp/s", "tls-cert": "c.pem" };
 * assert.throws(() => conflicts(values, [["unix", "tls-cert"], ["unix", "host"]]), {
 *   message: "--unix cannot be used with --tls-cert",
 * });
 * conflicts({ unix: "/tmp/s" }, [["unix", "tls-cert"]]); // fine
 * ```
 */
export function conflicts(values: FlagValues, pairs: readonly (readonly [string, string])[]): void {
  for (const [a, b] of pairs) {
    if (given(values, a) && given(values, b)) {
      throw new UsageError(`--${a} cannot be used with --${b}`);
    }
  }
}

/**
 * Refuses a flag given without one it depends on: throws `--a needs --b` when
 * `flag` was given and `needed` was not.
 *
 * @throws {UsageError} When `flag` was given without `needed`.
 *
 * @example
 * ```ts
 * import { requires } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => requires({ "tls-cert": "c.pem" }, "tls-cert", "tls-key"), {
 *   message: "--tls-cert needs --tls-key",
 * });
 * requires({}, "tls-cert", "tls-key"); // neither given: fine
 * ```
 */
export function requires(values: FlagValues, flag: string, needed: string): void {
  if (given(values, flag) && !given(values, needed)) {
    throw new UsageError(`--${flag} needs --${needed}`);
  }
}

/** Options for {@linkcode parsePort}. */
export interface PortOptions {
  /**
   * The lowest port accepted: 0 for a server (any free port), 1 for a client,
   * which cannot connect to port 0.
   * @default {0}
   */
  min?: number;
}

/**
 * A TCP port, `min` (0 unless given) to 65535.
 *
 * @throws {UsageError} When `text` is not a whole number in range.
 *
 * @example
 * ```ts
 * import { parsePort } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parsePort("0"), 0);
 * assert.throws(() => parsePort("0", "--port", { min: 1 }), {
 *   message: 'invalid --port "0": must be a number from 1 to 65535',
 * });
 * ```
 */
export function parsePort(text: string, flag = "--port", options: PortOptions = {}): number {
  const min = options.min ?? 0;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535 || Number(text) < min) {
    throw new UsageError(`invalid ${flag} "${text}": must be a number from ${min} to 65535`);
  }
  return Number(text);
}

/** A whole number, at least `min`. */
export function parseCount(text: string, flag: string, min = 1): number {
  if (!/^\d{1,15}$/.test(text) || Number(text) < min) {
    throw new UsageError(`invalid ${flag} "${text}": must be a whole number of at least ${min}`);
  }
  return Number(text);
}

/**
 * The largest `--max-line`: 16 MiB. A line is held whole before it is relayed,
 * once per reader's queue share, so a larger limit lets one client make the
 * server allocate that much per line; chat lines are far shorter.
 */
export const MAX_LINE_LIMIT = 16 * 1024 * 1024;

/** Options for {@linkcode parseBytes}. */
export interface BytesOptions {
  /** The smallest count accepted. @default {1} */
  min?: number;
  /** The largest count accepted. @default {Number.MAX_SAFE_INTEGER} */
  max?: number;
}

/** `bytes` the way a user would write it: `16M`, `64K`, or the plain number. */
export function formatBytes(bytes: number): string {
  for (const [suffix, unit] of [["G", 1024 ** 3], ["M", 1024 ** 2], ["K", 1024]] as const) {
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}

/**
 * A byte count with an optional K, M or G suffix (powers of 1024): `65536`, `64K`,
 * `1M`. The third argument is the options, or, as before they existed, the minimum.
 *
 * @throws {UsageError} When `text` is not a byte count from `min` to `max`.
 *
 * @example
 * ```ts
 * import { MAX_LINE_LIMIT, parseBytes } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseBytes("64K", "--max-line"), 65536);
 * assert.throws(() => parseBytes("10G", "--max-line", { max: MAX_LINE_LIMIT }), {
 *   message: 'invalid --max-line "10G": must be a byte count from 1 to 16M, such as 65536, 64K or 1M',
 * });
 * ```
 */
export function parseBytes(
  text: string,
  flag: string,
  options: BytesOptions | number = {},
): number {
  const { min = 1, max = Number.MAX_SAFE_INTEGER } = typeof options === "number"
    ? { min: options }
    : options;
  const match = /^(\d{1,15})([kmg]?)(i?b)?$/i.exec(text);
  const value = match === null
    ? NaN
    : Number(match[1]) * 1024 ** " kmg".indexOf((match[2] || " ").toLowerCase());
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? `of at least ${formatBytes(min)}`
      : `from ${formatBytes(min)} to ${formatBytes(max)}`;
    throw new UsageError(
      `invalid ${flag} "${text}": must be a byte count ${range}, such as 65536, 64K or 1M`,
    );
  }
  return value;
}

/** A duration in seconds, decimals allowed, returned in milliseconds. */
export function parseSeconds(text: string, flag: string, min = 0): number {
  if (!/^\d{1,9}(\.\d{1,3})?$/.test(text) || Number(text) < min) {
    throw new UsageError(
      `invalid ${flag} "${text}": must be a number of seconds of at least ${min}`,
    );
  }
  return Math.round(Number(text) * 1000);
}

/** A positive rate, decimals allowed. */
export function parseRate(text: string, flag: string): number {
  if (!/^\d{1,9}(\.\d{1,3})?$/.test(text) || Number(text) <= 0) {
    throw new UsageError(`invalid ${flag} "${text}": must be a number above 0`);
  }
  return Number(text);
}

/**
 * `[host:]port` as `--irc` takes it: `6667`, `127.0.0.1:6667` or `[::1]:6667`.
 * Without a host, `host` (the `--host` address) is used.
 *
 * @throws {UsageError} When the port is not a number from 0 to 65535, or an
 * IPv6 address is not in brackets.
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseHostPort("6667", "--irc", "127.0.0.1"), { hostname: "127.0.0.1", port: 6667 });
 * assert.deepEqual(parseHostPort("[::1]:6697", "--irc-tls", "127.0.0.1"), { hostname: "::1", port: 6697 });
 * ```
 */
export function parseHostPort(
  text: string,
  flag: string,
  host: string,
): { hostname: string; port: number } {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\]:(.*)$/.exec(text);
  if (bracketed !== null) return { hostname: bracketed[1], port: parsePort(bracketed[2], flag) };
  const colon = text.lastIndexOf(":");
  if (colon < 0) return { hostname: host, port: parsePort(text, flag) };
  const hostname = text.slice(0, colon);
  if (hostname.includes(":")) {
    throw new UsageError(
      `invalid ${flag} "${text}": write an IPv6 address in brackets, as [::1]:6667`,
    );
  }
  return {
    hostname: hostname === "" ? host : hostname,
    port: parsePort(text.slice(colon + 1), flag),
  };
}
