"""Jobs: validation, the queue and its workers (manager), durable records (store, status.json),
progress reporting, and running one job from start to end (runner)."""
