import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/**
 * A private PKI for tests, made by openssl in a temporary directory: a CA,
 * a server certificate for 127.0.0.1 and localhost signed by it, and a
 * client certificate (extendedKeyUsage clientAuth) signed by it. P-256
 * keys: quick to generate. Valid for two days.
 */
export interface TestCertificates {
  dir: string;
  /** Paths of the PEM files. */
  files: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
  /** The same files' contents. */
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  remove(): void;
}

function openssl(args: string[], dir: string): void {
  const run = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 20_000 });
  if (run.status !== 0) throw new Error(`these tests need openssl: openssl ${args.join(' ')} failed: ${run.error?.message ?? run.stderr}`);
}

export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-pki-'));
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...curve, '-days', '2', '-subj', '/CN=Sockeye Test CA', '-keyout', 'ca.key', '-out', 'ca.pem'], dir);
  const leaf = (name: string, subject: string, extensions: string): void => {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl(['req', '-new', ...curve, '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      ],
      dir,
    );
  };
  leaf('server', '/CN=localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', '/CN=sockeye-test-client', 'extendedKeyUsage=clientAuth\n');
  const files = {
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
  };
  const read = (path: string): string => readFileSync(path, 'utf8');
  return {
    dir,
    files,
    ca: read(files.ca),
    serverCert: read(files.serverCert),
    serverKey: read(files.serverKey),
    clientCert: read(files.clientCert),
    clientKey: read(files.clientKey),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** One self-signed server certificate for 127.0.0.1 and localhost (it is its own CA), in a temporary directory. */
export interface SelfSignedCertificate {
  /** Paths of the PEM files. */
  keyFile: string;
  certFile: string;
  /** The same files' contents. */
  key: string;
  cert: string;
  remove(): void;
}

export function makeSelfSignedCertificate(): SelfSignedCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-tls-'));
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      'key.pem',
      '-out',
      'cert.pem',
    ],
    dir,
  );
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  return {
    keyFile,
    certFile,
    key: readFileSync(keyFile, 'utf8'),
    cert: readFileSync(certFile, 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A self-signed certificate for the tests of the enclosing `describe` (or
 * file): made before them, removed after them. Read `key` and `cert` in the
 * tests or in a later `beforeAll`.
 */
export function useSelfSignedCertificate(): { readonly key: string; readonly cert: string } {
  let made: SelfSignedCertificate | undefined;
  beforeAll(() => {
    made = makeSelfSignedCertificate();
  });
  afterAll(() => made?.remove());
  return {
    get key(): string {
      return made!.key;
    },
    get cert(): string {
      return made!.cert;
    },
  };
}
