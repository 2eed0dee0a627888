/**
 * Flag parsing shared by `server.ts` and `client.ts`: `node:util` `parseArgs`
 * with its errors turned into one clear line, and checked flag values.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";

/** A command line that cannot be used as given: print it with the usage hint, exit 2. */
export class UsageError extends Error {
  /** `message` is one line, such as `invalid --port "99999": must be 0 to 65535`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/** The option table `parseArgs` takes. */
export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `args` with `parseArgs` (strict, positionals allowed), turning its
 * errors into a {@linkcode UsageError} with a short message.
 *
 * @example
 * ```ts
 * import { parseFlags, UsageError } from "./cli.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = { port: { type: "string", short: "p" } } as const;
 * assert.equal(parseFlags(["-p", "80"], spec).values.port, "80");
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
    return parseArgs({ args, options, allowPositionals: true, strict: true });
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

/** A TCP port, 0 to 65535 (0: any free port). */
export function parsePort(text: string, flag = "--port"): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw new UsageError(`invalid ${flag} "${text}": must be a number from 0 to 65535`);
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

/** A byte count with an optional K, M or G suffix (powers of 1024): `65536`, `64K`, `1M`. */
export function parseBytes(text: string, flag: string, min = 1): number {
  const match = /^(\d{1,15})([kmg]?)(i?b)?$/i.exec(text);
  const value = match === null
    ? NaN
    : Number(match[1]) * 1024 ** " kmg".indexOf((match[2] || " ").toLowerCase());
  if (!Number.isSafeInteger(value) || value < min) {
    throw new UsageError(
      `invalid ${flag} "${text}": must be a byte count of at least ${min}, such as 65536, 64K or 1M`,
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
