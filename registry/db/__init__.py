"""What use cases stand on: the unit of work (one use case = one transaction), row lookups and locks,
immutable records, the search condition model, the per-process write queues, the serving reads' prepared
statements (``prepared.py``: their own pooled connection, autocommit, planned once per connection), and which
failures are the database's state rather than a bug (``availability.py``: answered 503 with Retry-After). No use
cases live here."""
