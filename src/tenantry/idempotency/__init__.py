"""`Idempotency-Key` on every POST, as Stripe made common: the same key and body get the first
answer again; the same key with another body is a 422; while the first is in flight, a 409."""
