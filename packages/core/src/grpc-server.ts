import { readFileSync } from 'node:fs';
import { health, PROTO_ROOT } from '@aoa/proto';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import type { Logger } from './logger.js';

type ServingStatus = health.HealthCheckResponse_ServingStatus;
const { HealthCheckResponse_ServingStatus: Status } = health;

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/**
 * A grpc-js server with what every aoa service serves beside its own methods: `grpc.health.v1.Health`
 * (Check and Watch) and server reflection over the repository's `.proto` files.
 *
 * @example
 * const grpc = new GrpcServer(log, ['aoa/v1/issuer.proto']);
 * grpc.server.addService(IssuerService, handlers);
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

  /** Binds `host:port` (port 0 picks a free one), plaintext or TLS; returns the bound port. */
  listen(address: string, tls?: TlsFiles): Promise<number> {
    const credentials = tls
      ? ServerCredentials.createSsl(
          null,
          [{ cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) }],
          false,
        )
      : ServerCredentials.createInsecure();
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (error, port) => {
        if (error) reject(error);
        else {
          this.log.info({ address, port, tls: Boolean(tls) }, 'grpc listening');
          resolve(port);
        }
      });
    });
  }

  /** Stops accepting, lets in-flight calls finish for up to `graceMs`, then forces. */
  async stop(graceMs = 5000): Promise<void> {
    clearInterval(this.readiness);
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
