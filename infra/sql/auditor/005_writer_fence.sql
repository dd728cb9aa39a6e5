-- aoa auditor store, version 5: the writer fence. A writer taking the lease records its epoch (the
-- lease's KV revision when taken, which only grows); every batch commits only while the fence still
-- holds that epoch, checked inside the batch's own transaction, so a writer that was paused past its
-- lease and resumes can no longer commit what it held.
CREATE TABLE writer_fence (
  id smallint PRIMARY KEY CHECK (id = 1),
  epoch bigint NOT NULL,
  holder text NOT NULL,
  taken_at timestamptz NOT NULL DEFAULT now()
);
