import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { experimental } from '@grpc/grpc-js';
import type { Logger } from './logger.js';

/** A listener's TLS files (PEM). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /**
   * CA certificates (PEM) whose client certificates the listener verifies (RFC 8705 mutual TLS). A
   * client certificate is asked for, not required: callers without one still connect and prove
   * themselves otherwise, and a certificate that does not chain to these CAs is not seen by handlers.
   */
  clientCaFile?: string | undefined;
  /** How often the files are read again, in milliseconds; 0 reads them once, at start. */
  reloadMs?: number | undefined;
}

/** What the files held when they last loaded together. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
}

/** The default of `AOA_TLS_RELOAD_INTERVAL`. */
export const DEFAULT_TLS_RELOAD_MS = 10_000;

/**
 * A listener's TLS files, read at start and again every `reloadMs`, so a renewed certificate (an X.509
 * SVID lives an hour; cert-manager renews before expiry) or a rotated client-CA bundle takes effect
 * without a restart. A change counts only once the files load together (`tls.createSecureContext`: the
 * key matches the certificate, every PEM parses); until then the listener keeps what it had, and says
 * so once per change. It is the grpc-js certificate provider of the gRPC listener, and {@link onChange}
 * feeds `setSecureContext` of the HTTPS one. Connections already open keep their handshake.
 *
 * @example
 * const files = new ReloadingTlsFiles(tls, log);
 * files.onChange((m) => server.setSecureContext({ cert: m.cert, key: m.key, ca: m.ca }));
 */
export class ReloadingTlsFiles implements experimental.CertificateProvider {
  private material: TlsMaterial;
  private readonly listeners = new Set<(material: TlsMaterial) => void>();
  private readonly timer: NodeJS.Timeout | undefined;
  /** The last contents that failed to load, so one bad write is reported once. */
  private refused: string | undefined;

  constructor(
    private readonly files: TlsFiles,
    private readonly log: Logger,
  ) {
    this.material = load(files);
    const reloadMs = files.reloadMs ?? 0;
    if (reloadMs > 0) {
      this.timer = setInterval(() => this.reload(), reloadMs);
      this.timer.unref();
    }
  }

  current(): TlsMaterial {
    return this.material;
  }

  /** Calls `listener` with the new material each time the files change and load. */
  onChange(listener: (material: TlsMaterial) => void): void {
    this.listeners.add(listener);
  }

  stop(): void {
    clearInterval(this.timer);
    this.listeners.clear();
  }

  /** Reads the files; applies them when they differ from what is served and load together. */
  reload(): void {
    let next: TlsMaterial;
    try {
      next = read(this.files);
    } catch (error) {
      this.refuse('unreadable', error);
      return;
    }
    if (same(next, this.material)) return;
    try {
      check(next);
    } catch (error) {
      this.refuse(fingerprint(next), error);
      return;
    }
    this.refused = undefined;
    this.material = next;
    this.log.info(
      { certFile: this.files.certFile, clientCaFile: this.files.clientCaFile },
      'TLS files reloaded',
    );
    for (const listener of this.listeners) listener(next);
  }

  // grpc-js registers both listeners before it reads either update: deliver them on the next tick.
  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    const send = (m: TlsMaterial) => listener(m.ca ? { caCertificate: m.ca } : null);
    this.listeners.add(send);
    process.nextTick(send, this.material);
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    const send = (m: TlsMaterial) => listener({ certificate: m.cert, privateKey: m.key });
    this.listeners.add(send);
    process.nextTick(send, this.material);
  }

  removeCaCertificateListener(): void {}

  removeIdentityCertificateListener(): void {}

  private refuse(what: string, error: unknown): void {
    if (this.refused === what) return;
    this.refused = what;
    this.log.warn(
      { certFile: this.files.certFile, err: error instanceof Error ? error.message : String(error) },
      'TLS files changed but do not load: the listener keeps the previous ones',
    );
  }
}

function read(files: TlsFiles): TlsMaterial {
  return {
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    ca: files.clientCaFile ? readFileSync(files.clientCaFile) : undefined,
  };
}

/** Throws unless the key matches the certificate and every PEM parses. */
function check(material: TlsMaterial): void {
  createSecureContext({
    cert: material.cert,
    key: material.key,
    ...(material.ca ? { ca: material.ca } : {}),
  });
}

/** Reads and checks the files at start: a listener never starts on files that do not load. */
function load(files: TlsFiles): TlsMaterial {
  const material = read(files);
  check(material);
  return material;
}

const same = (a: TlsMaterial, b: TlsMaterial) =>
  a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca && b.ca ? a.ca.equals(b.ca) : a.ca === b.ca);

/** Identifies a set of contents by a digest, so no key material is kept beside the served one. */
const fingerprint = (m: TlsMaterial) =>
  createHash('sha256')
    .update(m.cert)
    .update(m.key)
    .update(m.ca ?? '')
    .digest('base64url');
