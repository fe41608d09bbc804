"""Use cases. Each public function is one transaction; HTTP adapters and the CLI call these, nothing else."""
