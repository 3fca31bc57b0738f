"""The transactional outbox: every side effect that leaves the database (a workflow started,
signalled or cancelled) is a row written in the transaction of the change, and a relay in the
worker process delivers it to Temporal until Temporal takes it."""
