/**
 * Pinning a server's certificate by its SHA-256 fingerprint, for a server that
 * made a throwaway self-signed certificate (`--tls-self-signed`, see
 * make_cert.ts) and printed the fingerprint for its clients.
 *
 * `Deno.connectTls` cannot pin: it checks a certificate against the authorities
 * it is given and tells nothing about the certificate it saw (`TlsConn.handshake()`
 * reports the ALPN protocol only). Deno's `node:tls` can show the peer's
 * certificate (`getPeerCertificate()`). So {@linkcode connectPinned} takes two
 * steps: a `node:tls` probe fetches the certificate without trusting it and
 * compares its fingerprint with the pinned one; then `Deno.connectTls` connects
 * trusting that certificate alone (`caCerts: [cert]`). The second connection is
 * checked by Deno's TLS as usual, so a server without the pinned certificate's
 * key cannot pass it, whatever the probe saw.
 *
 * @module
 */

import tls from "node:tls";
import { certificateFingerprint } from "./make_cert.ts";

/** Thrown when the server's certificate is not the pinned one, or cannot be fetched. */
export class PinError extends Error {
  /** `message`: one line for the user. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PinError";
  }
}

/**
 * A SHA-256 fingerprint as typed or pasted (any case; colons, spaces or none;
 * `SHA256:` or openssl's `sha256 Fingerprint=` in front) in the form
 * {@linkcode certificateFingerprint} writes; null when it is not 32 bytes of hex.
 *
 * @example
 * ```ts
 * import { parseFingerprint } from "./tls_pin.ts";
 * import assert from "node:assert/strict";
 *
 * const hex = "ab".repeat(32);
 * assert.equal(parseFingerprint(hex), Array(32).fill("AB").join(":"));
 * assert.equal(parseFingerprint(`sha256 Fingerprint=${hex}`), parseFingerprint(hex));
 * assert.equal(parseFingerprint("abcd"), null);
 * ```
 */
export function parseFingerprint(text: string): string | null {
  const hex = text.trim().replace(/^(?:sha-?256\s*(?:fingerprint)?\s*[:=]?)/i, "")
    .replace(/[\s:]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return null;
  return hex.match(/../g)!.join(":");
}

/** DER bytes as a PEM certificate. */
function derToPem(der: Uint8Array): string {
  let binary = "";
  for (const byte of der) binary += String.fromCharCode(byte);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** Where {@linkcode fetchPeerCertificate} and {@linkcode connectPinned} connect. */
export interface PinTarget {
  /** Host name or IP address. */
  hostname: string;
  /** TCP port. */
  port: number;
  /** Give up after this many milliseconds. @default {10000} */
  timeout?: number;
}

/**
 * The certificate a TLS server presents, as PEM, fetched without checking it,
 * and its fingerprint. The probe completes a TLS handshake and closes at once:
 * the server sees a client that connects and leaves without a word.
 *
 * @throws {PinError} When the connection or handshake fails or times out.
 */
export async function fetchPeerCertificate(
  target: PinTarget,
): Promise<{ cert: string; fingerprint: string }> {
  const { hostname, port } = target;
  const timeout = target.timeout ?? 10_000;
  const where = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  const der = await new Promise<Uint8Array>((resolve, reject) => {
    const socket = tls.connect({
      host: hostname,
      port,
      // A name for SNI; IP addresses are not sent as SNI.
      servername: /^[\d.]+$|:/.test(hostname) ? undefined : hostname,
      // Nothing is trusted here: the fingerprint check below is the trust decision.
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new PinError(`cannot fetch the certificate of ${where}: timed out`));
    }, timeout);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const raw = socket.getPeerCertificate().raw as Uint8Array | undefined;
      socket.destroy();
      if (raw === undefined || raw.length === 0) {
        reject(new PinError(`cannot fetch the certificate of ${where}: the server sent none`));
      } else resolve(new Uint8Array(raw));
    });
    socket.once("error", (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        new PinError(`cannot fetch the certificate of ${where}: ${error.message}`, {
          cause: error,
        }),
      );
    });
  });
  const cert = derToPem(der);
  return { cert, fingerprint: await certificateFingerprint(cert) };
}

/**
 * Connects with TLS to a server whose certificate has the SHA-256 `fingerprint`
 * (as {@linkcode parseFingerprint} accepts it), and completes the handshake.
 * Names are not checked: the pinned certificate is what identifies the server,
 * so `-H 192.0.2.7` works with a certificate made for `localhost`.
 *
 * @throws {TypeError} When `fingerprint` is not a SHA-256 fingerprint.
 * @throws {PinError} When the server presents another certificate, or the probe fails.
 * @throws {Deno.errors.InvalidData} (or the error Deno raises) when the second
 *   connection's handshake fails: the server does not hold the certificate's key.
 */
export async function connectPinned(
  target: PinTarget,
  fingerprint: string,
): Promise<Deno.TlsConn> {
  const pinned = parseFingerprint(fingerprint);
  if (pinned === null) {
    throw new TypeError(`Invalid fingerprint "${fingerprint}": must be 32 bytes in hex (SHA-256)`);
  }
  const seen = await fetchPeerCertificate(target);
  if (seen.fingerprint !== pinned) {
    throw new PinError(
      `the server's certificate is not the pinned one: its fingerprint is ${seen.fingerprint}`,
    );
  }
  const conn = await Deno.connectTls({
    hostname: target.hostname,
    port: target.port,
    caCerts: [seen.cert],
    unsafelyDisableHostnameVerification: true,
  });
  try {
    await conn.handshake();
  } catch (error) {
    conn.close();
    throw error;
  }
  return conn;
}
