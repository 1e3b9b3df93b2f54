import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsConnectionOptions, TlsOptions } from 'node:tls';
import { UsageFailure } from './args.js';

/**
 * The command line's certificate options, read from PEM files: `--ca`,
 * `--cert`, `--key`, `--insecure` for `connect`, `--tls-cert` and
 * `--tls-key` for the servers. A file that cannot be read is an argument
 * error (exit 2) naming the option and the file, before anything connects.
 */

function readPem(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageFailure(`cannot read ${option} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

export interface ClientTlsArgs {
  ca?: string;
  cert?: string;
  key?: string;
  insecure?: boolean;
}

/**
 * TLS options for a client, or `undefined` when none was given. `--cert`
 * without `--key` takes the key from the certificate's file (one PEM file
 * holding both, as curl allows); `--key` alone is refused, as it proves
 * nothing without the certificate it belongs to.
 */
export function clientTlsOptions(args: ClientTlsArgs): TlsConnectionOptions | undefined {
  if (args.key !== undefined && args.cert === undefined) throw new UsageFailure('--key goes with --cert');
  const options: TlsConnectionOptions = {};
  let any = false;
  if (args.ca !== undefined) {
    // Replaces the built-in roots, as curl's --cacert does: trust exactly this CA.
    options.ca = readPem(args.ca, '--ca');
    any = true;
  }
  if (args.cert !== undefined) {
    options.cert = readPem(args.cert, '--cert');
    options.key = readPem(args.key ?? args.cert, args.key === undefined ? '--cert (for its key)' : '--key');
    any = true;
  }
  if (args.insecure === true) {
    options.rejectUnauthorized = false;
    any = true;
  }
  return any ? options : undefined;
}

/** `--tls-cert FILE --tls-key FILE`: both or neither. */
export function serverTlsOptions(cert: string | undefined, key: string | undefined): TlsOptions | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined) throw new UsageFailure('--tls-key goes with --tls-cert');
  if (key === undefined) throw new UsageFailure('--tls-cert needs --tls-key (the private key of the certificate)');
  return { cert: readPem(cert, '--tls-cert'), key: readPem(key, '--tls-key') };
}

/** OpenSSL's verification failures (node:tls error codes) that mean "this certificate is not trusted here". */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/**
 * A hint to add to a failed connection's message when the cause was the
 * server's certificate, or `null`: what to pass so the next try works.
 */
export function certificateHint(error: unknown): string | null {
  let cause: unknown = error;
  // The TLS error sits under the handshake error (and a proxy's, at most a few levels).
  for (let depth = 0; depth < 4 && cause instanceof Error; depth++) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== undefined && UNTRUSTED.has(code)) {
      return "the server's certificate is not signed by a CA this client trusts: pass that CA with --ca FILE (or --insecure to skip the check)";
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return "the server's certificate is not for this host name: connect with a name it lists (or --insecure to skip the check)";
    }
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
      return "the server's certificate is outside its validity period (--insecure skips the check)";
    }
    cause = cause.cause;
  }
  return null;
}
