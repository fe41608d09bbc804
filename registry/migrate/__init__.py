"""Moving registries in and out: the ``registry import ...`` and ``registry export`` commands' machinery.

One module per source or format; each only reads and parses, and hands the registry service layer what it
read (``services/imports.py`` for models, one transaction per model), so an import obeys the same rules and
lands in the same audit trail as any other write.

* ``mlflow.py``   reads a running MLflow (OSS 2.x/3.x, or a Databricks workspace) through its REST API
* ``exchange.py`` the export file: a versioned JSON Lines format (written, read back, verified offline)
* ``restore.py``  ``registry import registry``: an export brought back into a registry
* ``run.py``      drives an import model by model as the reader hands them over, with progress and the summary table
"""
