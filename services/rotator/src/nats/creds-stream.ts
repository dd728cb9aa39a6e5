import { STREAMS, type Subjects } from '@aoa/core';
import { type JetStreamManager, StorageType } from '@nats-io/jetstream';

/**
 * Creates `AOA_CREDS`: every `aoa.creds.>` subject keeps only its last message, so an agent that
 * starts late reads its current credential at once (deliver policy last-per-subject).
 */
export async function ensureCredsStream(
  jsm: JetStreamManager,
  subjects: Subjects,
  replicas: number,
): Promise<void> {
  try {
    await jsm.streams.info(STREAMS.creds);
  } catch (error) {
    if (!(error instanceof Error) || !/not found/i.test(error.message)) throw error;
    await jsm.streams.add({
      name: STREAMS.creds,
      subjects: [subjects.credsAll()],
      storage: StorageType.File,
      max_msgs_per_subject: 1,
      duplicate_window: 120 * 1e9,
      num_replicas: replicas,
    });
  }
}
