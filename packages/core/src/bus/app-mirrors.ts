import { type JetStreamManager, jetstreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.js';

/**
 * Where the services' account exports its JetStream API to the apps account, as the apps account
 * imports it (infra/nats/auth.conf): a mirror in the apps account creates its source consumer there.
 */
export const APPS_SOURCE_API = '$JS.aoa.API';
/** The subjects, `<prefix>.<stream>`, the services' account delivers each mirror's messages on. */
export const APPS_DELIVER_PREFIX = 'aoa.apps.deliver';

/**
 * What a stream's mirror in the apps account keeps of the source's configuration: its limits, and the
 * KV flags (roll-ups, no deletes) the client library reads, so a bucket's mirror opens and watches as
 * the bucket itself.
 */
function mirrorConfig(source: StreamConfig): Partial<StreamConfig> & { name: string } {
  return {
    name: source.name,
    mirror: {
      name: source.name,
      external: { api: APPS_SOURCE_API, deliver: `${APPS_DELIVER_PREFIX}.${source.name}` },
    },
    storage: source.storage,
    num_replicas: source.num_replicas,
    max_age: source.max_age,
    max_bytes: source.max_bytes,
    max_msg_size: source.max_msg_size,
    max_msgs_per_subject: source.max_msgs_per_subject,
    allow_rollup_hdrs: source.allow_rollup_hdrs,
    deny_delete: source.deny_delete,
    deny_purge: source.deny_purge,
  };
}

/**
 * Creates (or brings up to date) a mirror of each stream in `streams` in the apps account, whose
 * JetStream API this connection reaches at `appsApi` (e.g. `$JS.apps.API`). Verifiers and agents read
 * those mirrors in their own account, under its JetStream limits, and never reach a service's stream
 * or subject (docs/operations.md, "NATS accounts"). Throws when the apps account cannot be reached.
 */
export async function ensureAppMirrors(
  nc: NatsConnection,
  appsApi: string,
  streams: string[],
  log: Logger,
): Promise<void> {
  const own = await jetstreamManager(nc);
  const apps = await jetstreamManager(nc, { apiPrefix: appsApi, checkAPI: false });
  for (const name of streams) {
    const config = mirrorConfig((await own.streams.info(name)).config);
    if (await exists(apps, name)) await apps.streams.update(name, config);
    else await apps.streams.add(config);
  }
  log.info({ streams, appsApi }, 'apps account mirrors in place');
}

async function exists(jsm: JetStreamManager, name: string): Promise<boolean> {
  try {
    await jsm.streams.info(name);
    return true;
  } catch (error) {
    if (error instanceof Error && /not found/i.test(error.message)) return false;
    throw error;
  }
}
