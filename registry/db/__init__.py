"""What use cases stand on: the unit of work (one use case = one transaction), row lookups and locks,
immutable records, the search condition model and the per-process write queues. No use cases live here."""
