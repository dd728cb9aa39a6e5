import type { Msg } from '@nats-io/transport-node';

/**
 * Whether `msg` was delivered by a JetStream consumer rather than published by a client. A push
 * consumer delivers stored messages onto whatever subject its creator named, each with a `$JS.ACK.`
 * reply (`$JS.FC.` for flow control) or as a `100` status heartbeat; the services' subjects are only
 * ever published by their one sending service, never delivered, so every handler of a service
 * subject and of the revocation notices ignores such a message.
 */
export function deliveredByJetStream(msg: Pick<Msg, 'reply' | 'headers'>): boolean {
  return (msg.reply?.startsWith('$JS.') ?? false) || msg.headers?.code === 100;
}
