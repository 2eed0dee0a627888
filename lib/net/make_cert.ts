/**
 * Certificates for a charla server with TLS, made by running `openssl`: charla
 * has no X.509 encoder of its own, and neither Deno nor WebCrypto can write a
 * certificate (WebCrypto makes keys, but a certificate needs an encoder).
 *
 * - {@linkcode makeCertificates}: a small authority and a server certificate it
 *   signed, what `deno task cert` writes. Clients trust the authority with `--ca`.
 * - {@linkcode makeSelfSigned}: one throwaway certificate, in memory, for a
 *   server started with `--tls-self-signed`; clients pin its
 *   {@linkcode certificateFingerprint} (see tls_pin.ts).
 *
 * Run as a program (`deno task cert [options] [host…]`) it writes `ca.pem`,
 * `server.pem` and `server-key.pem` and prints the command lines that use them.
 *
 * @module
 */

import { parseCount, parseFlags, problemLine, UsageError, usageText } from "../cli.ts";
import { parseAddress } from "./cidr.ts";

/** The names a certificate is made for when none are given. */
export const DEFAULT_HOSTS: readonly string[] = ["localhost", "127.0.0.1", "::1"];

/**
 * Days a certificate is valid by default: 825, the most that Apple's TLS clients
 * accept for a server certificate, and long enough not to expire under a chat.
 */
export const DEFAULT_DAYS = 825;

/** Thrown when openssl cannot make a certificate, or the files cannot be written. */
export class CertError extends Error {
  /** `message`: what failed and what to try, one line. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CertError";
  }
}

/** Options for {@linkcode makeCertificates} and {@linkcode makeSelfSigned}. */
export interface CertOptions {
  /** Days the certificates are valid. @default {825} */
  days?: number;
  /** The openssl program to run. @default {"openssl"} */
  openssl?: string;
}

/** What {@linkcode makeCertificates} makes, as PEM text. */
export interface CertificateSet {
  /** The authority's certificate: what clients trust, with `--ca`. */
  caCert: string;
  /** The server's certificate, signed by the authority: `--tls-cert`. */
  cert: string;
  /** The server's private key, PKCS#8: `--tls-key`. Keep it private. */
  key: string;
}

/** What {@linkcode makeSelfSigned} makes, as PEM text, and its fingerprint. */
export interface SelfSignedCertificate {
  /** The certificate, signed by its own key; the `cert` of `Deno.listenTls`. */
  cert: string;
  /** Its private key, PKCS#8; the `key` of `Deno.listenTls`. */
  key: string;
  /** The certificate's SHA-256 fingerprint, as {@linkcode certificateFingerprint} writes it. */
  fingerprint: string;
}

// An RFC 1123 host name, optionally a wildcard's "*." in front: letters, digits
// and hyphens in dot-separated labels. Checking this also keeps anything that
// means something to openssl (",", "/", "=") out of its arguments.
const DNS_NAME =
  /^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** One name of a certificate: a DNS name or an IP address. */
interface HostName {
  kind: "DNS" | "IP";
  /** As it goes in the certificate: lowercase, no brackets, no final dot. */
  name: string;
}

function checkHost(text: string): HostName {
  const bare = /^\[(.*)\]$/.exec(text)?.[1] ?? text;
  if (!bare.includes("%") && parseAddress(bare) !== null) return { kind: "IP", name: bare };
  if (bare.length <= 253 && DNS_NAME.test(bare) && !/^[\d.]+$/.test(bare)) {
    return { kind: "DNS", name: bare.toLowerCase().replace(/\.$/, "") };
  }
  throw new TypeError(`Invalid host "${text}": must be a DNS name or an IP address`);
}

/**
 * The `subjectAltName` value for `hosts`: each DNS name as `DNS:`, each IP address
 * (IPv4 or IPv6, brackets allowed) as `IP:`, duplicates once.
 *
 * @throws {TypeError} When a host is neither a DNS name nor an IP address.
 *
 * @example
 * ```ts
 * import { subjectAltName } from "./make_cert.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   subjectAltName(["localhost", "127.0.0.1", "[::1]", "Chat.Example."]),
 *   "DNS:localhost,IP:127.0.0.1,IP:::1,DNS:chat.example",
 * );
 * ```
 */
export function subjectAltName(hosts: readonly string[]): string {
  if (hosts.length === 0) throw new TypeError("Cannot make a certificate for no host");
  const entries = hosts.map(checkHost).map(({ kind, name }) => `${kind}:${name}`);
  return [...new Set(entries)].join(",");
}

/** The common name for a certificate: its first DNS name, as browsers no longer read it. */
function commonName(hosts: readonly string[]): string {
  return hosts.map(checkHost).find((host) => host.kind === "DNS")?.name ?? "charla";
}

/** A random positive 64-bit serial number, so that two certificates never share one. */
function serial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  bytes[0] &= 0x7f;
  return `0x${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function checkDays(days: number): string {
  if (!Number.isInteger(days) || days < 1) {
    throw new RangeError(`Cannot make a certificate valid for "${days}" days: must be 1 or more`);
  }
  return String(days);
}

// openssl reads its configuration from this file; an empty one means no default
// extensions (Debian's openssl.cnf would make every certificate a CA), and no
// default key file (it would write privkey.pem into the current folder).
const NO_CONFIG = Deno.build.os === "windows" ? "NUL" : "/dev/null";

const decoder = new TextDecoder();

/** Runs openssl; its stdout, or a {@linkcode CertError} that says what went wrong. */
async function openssl(args: string[], options: CertOptions): Promise<string> {
  const program = options.openssl ?? "openssl";
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(program, {
      args,
      stdin: "null", // a prompt, if any, meets the end of input rather than waiting
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CertError(
        `"${program}" was not found: install OpenSSL (Debian, Ubuntu: apt-get install openssl)`,
        { cause: error },
      );
    }
    if (error instanceof Deno.errors.NotCapable) {
      throw new CertError(`running ${program} needs --allow-run=${program}`, { cause: error });
    }
    throw error;
  }
  if (!output.success) {
    const why = decoder.decode(output.stderr).trim().split("\n").filter((l) => l !== "-----")
      .at(-1);
    throw new CertError(`${program} ${args[0]} failed: ${why ?? `exit code ${output.code}`}`);
  }
  return decoder.decode(output.stdout);
}

/** The PEM blocks of `text` labelled `label` (`CERTIFICATE`, `PRIVATE KEY`). */
function pemBlocks(text: string, label: string): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----\\r?\\n[\\s\\S]*?-----END ${label}-----`, "g");
  return Array.from(text.matchAll(re), (m) => `${m[0]}\n`);
}

function onePem(text: string, label: string, what: string): string {
  const [block] = pemBlocks(text, label);
  if (block === undefined) throw new CertError(`openssl wrote no ${what}`);
  return block;
}

/**
 * A certificate's SHA-256 fingerprint, the way `openssl x509 -fingerprint -sha256`
 * and Node's `fingerprint256` write it: 32 bytes in uppercase hex, colon-separated.
 *
 * @example
 * ```ts
 * import { certificateFingerprint } from "./make_cert.ts";
 * import assert from "node:assert/strict";
 *
 * const pem = await Deno.readTextFile(new URL("../../tests/fixtures/ca.pem", import.meta.url));
 * assert.match(await certificateFingerprint(pem), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
 * ```
 */
export async function certificateFingerprint(pem: string): Promise<string> {
  const [block] = pemBlocks(pem, "CERTIFICATE");
  if (block === undefined) throw new TypeError("Cannot take a fingerprint: no certificate in PEM");
  const base64 = block.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

/**
 * Makes a small certificate authority and a server certificate it signed, for
 * `hosts` (DNS names and IP addresses, as in {@linkcode subjectAltName}), with
 * EC P-256 keys and ECDSA-SHA256 signatures. The server certificate is X.509 v3
 * with `basicConstraints=CA:FALSE`, `extendedKeyUsage=serverAuth` and a
 * `subjectAltName` holding every host; the authority may sign end entities only
 * (`pathlen:0`).
 *
 * The authority's private key lives in a temporary folder for the two openssl
 * runs and is then deleted: it can sign nothing else, so a client that trusts
 * `caCert` trusts this one server certificate, and a leaked `caCert` cannot be
 * used to impersonate anyone.
 *
 * Needs `--allow-run=openssl` and, for the temporary folder, `--allow-read` and
 * `--allow-write`.
 *
 * @throws {TypeError} When a host is neither a DNS name nor an IP address.
 * @throws {CertError} When openssl is missing, not allowed, or fails.
 */
export async function makeCertificates(
  hosts: readonly string[] = DEFAULT_HOSTS,
  options: CertOptions = {},
): Promise<CertificateSet> {
  const san = subjectAltName(hosts);
  const days = checkDays(options.days ?? DEFAULT_DAYS);
  const cn = commonName(hosts);
  let dir: string;
  try {
    dir = await Deno.makeTempDir({ prefix: "charla-cert-" });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
    throw new CertError("making certificates needs --allow-read and --allow-write", {
      cause: error,
    });
  }
  const file = (name: string) => `${dir}/${name}`;
  try {
    // The same shape as tests/fixtures/make.sh, whose output rustls is known to accept.
    await Deno.writeTextFile(
      file("ca.cnf"),
      `[req]
prompt = no
distinguished_name = dn
x509_extensions = v3_ca
[dn]
O = charla
CN = charla private CA for ${cn}
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`,
    );
    await Deno.writeTextFile(
      file("server.cnf"),
      `[req]
prompt = no
distinguished_name = dn
[dn]
O = charla
CN = ${cn}
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`,
    );
    const newKey = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    await openssl([...newKey, "-out", file("ca-key.pem")], options);
    await openssl([...newKey, "-out", file("server-key.pem")], options);
    await openssl([
      ...["req", "-new", "-x509", "-config", file("ca.cnf"), "-key", file("ca-key.pem")],
      ...["-sha256", "-days", days, "-set_serial", serial(), "-out", file("ca.pem")],
    ], options);
    await openssl([
      ...["req", "-new", "-config", file("server.cnf"), "-key", file("server-key.pem")],
      ...["-out", file("server.csr")],
    ], options);
    await openssl([
      ...["x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem")],
      ...["-CAkey", file("ca-key.pem"), "-sha256", "-days", days, "-set_serial", serial()],
      ...["-extfile", file("server.cnf"), "-extensions", "v3_server", "-out", file("server.pem")],
    ], options);
    return {
      caCert: onePem(await Deno.readTextFile(file("ca.pem")), "CERTIFICATE", "certificate"),
      cert: onePem(await Deno.readTextFile(file("server.pem")), "CERTIFICATE", "certificate"),
      key: onePem(await Deno.readTextFile(file("server-key.pem")), "PRIVATE KEY", "key"),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Makes a throwaway self-signed certificate for `hosts`, in memory: one openssl
 * run that writes the key and the certificate to its stdout, so the only
 * permission needed is `--allow-run=openssl` (no files are read or written).
 *
 * The certificate says `basicConstraints=CA:FALSE`: rustls, under Deno's TLS,
 * refuses a self-signed certificate that says `CA:TRUE` as its own end entity
 * (`CaUsedAsEndEntity`), but accepts this one when a client trusts the
 * certificate itself (`caCerts: [cert]`), which is what pinning does.
 *
 * @throws {TypeError} When a host is neither a DNS name nor an IP address.
 * @throws {CertError} When openssl is missing, not allowed, or fails.
 *
 * @example
 * ```ts ignore
 * import { makeSelfSigned } from "./make_cert.ts";
 *
 * const { cert, key, fingerprint } = await makeSelfSigned(["localhost", "127.0.0.1"]);
 * using listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
 * console.log(`clients pin it with: --tls --fingerprint ${fingerprint}`);
 * ```
 */
export async function makeSelfSigned(
  hosts: readonly string[] = DEFAULT_HOSTS,
  options: CertOptions = {},
): Promise<SelfSignedCertificate> {
  const san = subjectAltName(hosts);
  const days = checkDays(options.days ?? DEFAULT_DAYS);
  // No -keyout and an empty configuration: openssl writes the new key to stdout,
  // before the certificate.
  const out = await openssl([
    ...["req", "-x509", "-config", NO_CONFIG, "-newkey", "ec"],
    ...["-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-sha256", "-days", days],
    ...["-set_serial", serial(), "-subj", `/O=charla/CN=${commonName(hosts)}`],
    ...["-addext", "basicConstraints=critical,CA:FALSE"],
    ...["-addext", "keyUsage=critical,digitalSignature"],
    ...["-addext", "extendedKeyUsage=serverAuth"],
    ...["-addext", `subjectAltName=${san}`],
  ], options);
  const cert = onePem(out, "CERTIFICATE", "certificate");
  return {
    cert,
    key: onePem(out, "PRIVATE KEY", "key"),
    fingerprint: await certificateFingerprint(cert),
  };
}

/** Where {@linkcode writeCertificates} put each file. */
export interface CertificatePaths {
  /** `<dir>/ca.pem`. */
  caCert: string;
  /** `<dir>/server.pem`. */
  cert: string;
  /** `<dir>/server-key.pem`. */
  key: string;
}

/**
 * Writes `set` into `dir` (made if missing) as `ca.pem`, `server.pem` and
 * `server-key.pem`, the key readable by its owner only. An existing file is an
 * error unless `force` is set; then nothing is written at all.
 *
 * @throws {CertError} When a file exists (without `force`) or cannot be written.
 */
export async function writeCertificates(
  dir: string,
  set: CertificateSet,
  options: { force?: boolean } = {},
): Promise<CertificatePaths> {
  const base = dir.replace(/(.)\/+$/, "$1");
  const paths: CertificatePaths = {
    caCert: `${base}/ca.pem`,
    cert: `${base}/server.pem`,
    key: `${base}/server-key.pem`,
  };
  const force = options.force ?? false;
  try {
    await Deno.mkdir(base, { recursive: true });
    if (!force) {
      for (const path of Object.values(paths)) {
        if (await exists(path)) {
          throw new CertError(
            `"${path}" already exists: pass --force to replace it, or choose another --out`,
          );
        }
      }
    }
    const write = async (path: string, text: string, mode: number) => {
      // A replaced file is removed first, so the new one is made with `mode`: a key
      // written into an old file would keep that file's mode, readable by others.
      if (force) await Deno.remove(path).catch(ignoreNotFound);
      // createNew: a file that appeared since the check is not overwritten either.
      await Deno.writeTextFile(path, text, { mode, createNew: true });
    };
    await write(paths.caCert, set.caCert, 0o644);
    await write(paths.cert, set.cert, 0o644);
    await write(paths.key, set.key, 0o600);
  } catch (error) {
    if (error instanceof CertError) throw error;
    if (error instanceof Deno.errors.NotCapable) {
      throw new CertError(`writing to "${base}" needs --allow-read and --allow-write`, {
        cause: error,
      });
    }
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new CertError(`a file in "${base}" appeared while writing: run again`, {
        cause: error,
      });
    }
    throw new CertError(`cannot write to "${base}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  return paths;
}

function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** `text` as one shell word: as it is when it is safe, else in single quotes. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

const USAGE = `charla cert: make a certificate authority and a server certificate for TLS

Usage: deno task cert [options] [host...]

Each host is a DNS name or an IP address clients will connect to; the server
certificate is valid for every one (default: ${DEFAULT_HOSTS.join(" ")}).
Runs openssl, which must be installed (1.1.1 or newer), with EC P-256 keys.

Options:
  -o, --out <dir>   where to write ca.pem, server.pem and server-key.pem
                    (default ./charla-tls; made if missing)
  -f, --force       replace those files if they exist
      --days <n>    how long the certificates are valid (default ${DEFAULT_DAYS})
  -h, --help        show this help

The server uses server.pem and server-key.pem (keep the key private); clients
trust ca.pem. The authority's own key is not kept: it can sign nothing else.
To add a name, run again with every name and --force, and hand out the new
ca.pem.

Examples:
  deno task cert
  deno task cert --out /etc/charla chat.example.org 192.0.2.7`;

const OPTIONS = {
  out: { type: "string", short: "o" },
  force: { type: "boolean", short: "f" },
  days: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * `deno task cert`: makes the certificates, writes them, prints how to use them;
 * resolves with the exit code (0, 1 when something failed, 2 for a bad command
 * line).
 */
export async function main(args: string[]): Promise<number> {
  const encoder = new TextEncoder();
  const print = (stream: { writeSync(p: Uint8Array): number }, text: string) => {
    const bytes = encoder.encode(`${text}\n`);
    for (let done = 0; done < bytes.length;) done += stream.writeSync(bytes.subarray(done));
  };
  let hosts: string[];
  let out: string;
  let days: number;
  let force: boolean;
  try {
    const { values, positionals } = parseFlags(args, OPTIONS);
    if (values.help) {
      print(Deno.stdout, USAGE);
      return 0;
    }
    hosts = positionals.length > 0 ? positionals : [...DEFAULT_HOSTS];
    try {
      subjectAltName(hosts);
    } catch (error) {
      throw new UsageError((error as Error).message, { cause: error });
    }
    out = values.out ?? "charla-tls";
    if (out === "") throw new UsageError('invalid --out "": must be a folder');
    days = values.days === undefined ? DEFAULT_DAYS : parseCount(values.days, "--days");
    force = values.force ?? false;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    print(Deno.stderr, usageText("cert", error, "deno task cert"));
    return 2;
  }
  let paths: CertificatePaths;
  try {
    paths = await writeCertificates(out, await makeCertificates(hosts, { days }), { force });
  } catch (error) {
    if (!(error instanceof CertError)) throw error;
    print(Deno.stderr, problemLine("cert", error.message));
    return 1;
  }
  const until = new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
  const names = [...new Set(hosts.map((host) => checkHost(host).name))];
  const [ca, cert, key] = [paths.caCert, paths.cert, paths.key].map(shellWord);
  print(
    Deno.stdout,
    `Wrote ${ca}, ${cert} and ${key},
valid until ${until} for ${names.join(", ")}.

Run the server (${key} stays private, on the server's machine):
  deno run --allow-net --allow-read server.ts --relay --tls-cert ${cert} --tls-key ${key}

Give ${ca} to the people who connect; each runs:
  deno run --allow-net --allow-read client.ts --tls --ca ${ca} -H ${shellWord(names[0])} -p 5000`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
