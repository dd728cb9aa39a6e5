import { health, PROTO_ROOT } from '@aoa/proto';
import {
  experimental,
  type Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { AppError } from './errors.js';
import { toGrpcError } from './grpc-status.js';
import type { Logger } from './logger.js';
import { ReloadingTlsFiles, type TlsFiles } from './tls-files.js';

/** The most request metadata (keys and values, all entries) any aoa method accepts. */
export const MAX_METADATA_BYTES = 16 * 1024;

/** What a request that does not decode becomes, so its handler can refuse it as INVALID_ARGUMENT. */
class MalformedRequest {
  constructor(readonly problem: string) {}
}

type ServingStatus = health.HealthCheckResponse_ServingStatus;
const { HealthCheckResponse_ServingStatus: Status } = health;

/**
 * Plaintext, or TLS from files re-read as they change ({@link ReloadingTlsFiles} as the grpc-js
 * certificate provider): with client CAs, a client certificate is asked for, never required.
 */
function serverCredentials(
  tls: TlsFiles | undefined,
  log: Logger,
): { credentials: ServerCredentials; files?: ReloadingTlsFiles } {
  if (!tls) return { credentials: ServerCredentials.createInsecure() };
  const files = new ReloadingTlsFiles(tls, log);
  return {
    credentials: experimental.createCertificateProviderServerCredentials(
      files,
      tls.clientCaFile ? files : null,
      false,
    ),
    files,
  };
}

/**
 * A grpc-js server with what every aoa service serves beside its own methods: `grpc.health.v1.Health`
 * (Check and Watch) and server reflection over the repository's `.proto` files.
 *
 * @example
 * const grpc = new GrpcServer(log, ['aoa/v1/issuer.proto']);
 * grpc.addService(IssuerService, handlers);
 * const port = await grpc.listen('127.0.0.1:0');
 */
export class GrpcServer {
  readonly server = new Server({ 'grpc.max_receive_message_length': 256 * 1024 });
  private readonly statuses = new Map<string, ServingStatus>([['', Status.NOT_SERVING]]);
  private readonly watchers = new Set<{
    service: string;
    call: ServerWritableStream<health.HealthCheckRequest, health.HealthCheckResponse>;
  }>();
  private readiness: NodeJS.Timeout | undefined;
  private readonly tlsFiles: ReloadingTlsFiles[] = [];

  constructor(
    private readonly log: Logger,
    protoFiles: string[],
  ) {
    this.server.addService(health.HealthService, {
      check: (
        call: ServerUnaryCall<health.HealthCheckRequest, health.HealthCheckResponse>,
        callback: sendUnaryData<health.HealthCheckResponse>,
      ) => {
        const current = this.statuses.get(call.request.service);
        if (current === undefined) callback({ code: status.NOT_FOUND, details: 'unknown service' });
        else callback(null, { status: current });
      },
      watch: (call: ServerWritableStream<health.HealthCheckRequest, health.HealthCheckResponse>) => {
        const watcher = { service: call.request.service, call };
        this.watchers.add(watcher);
        call.write({ status: this.statuses.get(watcher.service) ?? Status.SERVICE_UNKNOWN });
        call.on('cancelled', () => this.watchers.delete(watcher));
      },
    });
    const definition = loadSync([...protoFiles, 'grpc/health/v1/health.proto'], {
      includeDirs: [PROTO_ROOT],
    });
    new ReflectionService(definition).addToServer(this.server);
  }

  /**
   * Adds an aoa service whose requests are checked before any handler runs: a body that is not a valid
   * protobuf of its message (or holds an integer beyond 2^53 - 1) is INVALID_ARGUMENT
   * `MALFORMED_REQUEST`, not grpc-js's INTERNAL, and metadata over {@link MAX_METADATA_BYTES} is
   * RESOURCE_EXHAUSTED `METADATA_TOO_LARGE`. Unary and server-streaming methods (all aoa has).
   */
  addService(service: ServiceDefinition, implementation: UntypedServiceImplementation): void {
    const guarded: Record<string, ServiceDefinition[string]> = {};
    const handlers: UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(service)) {
      guarded[name] = {
        ...method,
        requestDeserialize: (bytes: Buffer) => {
          try {
            return method.requestDeserialize(bytes);
          } catch (error) {
            return new MalformedRequest(error instanceof Error ? error.message : String(error));
          }
        },
      };
      const handler = implementation[name] as (call: GuardedCall, callback?: sendUnaryData<unknown>) => void;
      handlers[name] = (call: GuardedCall, callback?: sendUnaryData<unknown>) => {
        const refusal = this.refusalOf(call, method.path);
        if (refusal === undefined) return handler(call, callback);
        const error = toGrpcError(refusal, this.log);
        if (callback) callback(error);
        else call.emit('error', error);
      };
    }
    this.server.addService(guarded, handlers);
  }

  private refusalOf(call: GuardedCall, path: string): AppError | undefined {
    const size = metadataBytes(call.metadata);
    if (size > MAX_METADATA_BYTES) {
      return new AppError(
        'resource_exhausted',
        `request metadata is ${size} bytes; at most ${MAX_METADATA_BYTES} are accepted`,
        { reason: 'METADATA_TOO_LARGE', constraint: `metadata <= ${MAX_METADATA_BYTES} bytes` },
      );
    }
    if (call.request instanceof MalformedRequest) {
      return new AppError(
        'invalid_argument',
        `${path}: the request does not decode (${call.request.problem})`,
        {
          reason: 'MALFORMED_REQUEST',
        },
      );
    }
    return undefined;
  }

  /**
   * Serves health from the same answer as `/readyz`: SERVING while `notReady()` is empty, NOT_SERVING
   * with a reason logged once per change, asked now and every `intervalMs` until {@link stop}.
   */
  followReadiness(notReady: () => string[], services: string[], intervalMs = 1000): void {
    let serving: boolean | undefined;
    const update = () => {
      const problems = notReady();
      if (serving === (problems.length === 0)) return;
      serving = problems.length === 0;
      if (!serving) this.log.warn({ problems }, 'not serving');
      else this.log.info('serving');
      this.setServing(serving, services);
    };
    update();
    this.readiness = setInterval(update, intervalMs);
    this.readiness.unref();
  }

  /** Marks the whole server ('') and each named service as serving or not. */
  setServing(serving: boolean, services: string[] = []): void {
    const value = serving ? Status.SERVING : Status.NOT_SERVING;
    for (const service of ['', ...services]) {
      this.statuses.set(service, value);
      for (const w of this.watchers) if (w.service === service) w.call.write({ status: value });
    }
  }

  /** Binds `host:port` (port 0 picks a free one), plaintext, TLS or mutual TLS; returns the bound port. */
  listen(address: string, tls?: TlsFiles): Promise<number> {
    const { credentials, files } = serverCredentials(tls, this.log);
    if (files) this.tlsFiles.push(files);
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (error, port) => {
        if (error) reject(error);
        else {
          this.log.info(
            { address, port, tls: Boolean(tls), clientCertificates: Boolean(tls?.clientCaFile) },
            'grpc listening',
          );
          resolve(port);
        }
      });
    });
  }

  /** Stops accepting, lets in-flight calls finish for up to `graceMs`, then forces. */
  async stop(graceMs = 5000): Promise<void> {
    clearInterval(this.readiness);
    for (const files of this.tlsFiles) files.stop();
    this.setServing(false);
    for (const w of this.watchers) w.call.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** The part of a unary or server-streaming call the guard reads. */
interface GuardedCall {
  request: unknown;
  metadata: Metadata;
  emit(event: 'error', error: unknown): boolean;
}

function metadataBytes(metadata: Metadata): number {
  let size = 0;
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values) {
      size += key.length + (Buffer.isBuffer(value) ? value.length : Buffer.byteLength(value));
    }
  }
  return size;
}
