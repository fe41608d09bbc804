"""migrate/mlflow.py reads a source while the import writes: each model is handed over as soon as its versions
are all in, and a source that does not keep the order asked for still gives every model whole."""
from __future__ import annotations

import io

from registry.migrate import mlflow, run


class FakeSource(mlflow.MlflowSource):
    """Answers the two searches from lists, a page at a time, and logs what was asked."""

    def __init__(self, models: list[str], versions: list[tuple[str, int]]):
        super().__init__("http://mlflow.example")
        self.models, self.versions, self.asked = models, versions, []

    def is_databricks(self) -> bool:
        return False

    def get(self, path: str, **params) -> dict:
        start = int(params.get("page_token") or 0)
        size = params["max_results"]
        self.asked.append((path, start, params.get("filter")))
        if params.get("filter"):  # the prompt scans: none here
            return {}
        if path == "registered-models/search":
            items, key = [{"name": n, "creation_timestamp": "1"} for n in self.models], "registered_models"
        else:
            assert params["order_by"] == ["name ASC", "version_number ASC"]
            items = [{"name": n, "version": str(v), "source": f"s3://b/{n}/{v}", "creation_timestamp": "1"}
                     for n, v in self.versions]
            key = "model_versions"
        page = items[start:start + size]
        return {key: page, **({"next_page_token": str(start + size)} if start + size < len(items) else {})}


def read(source: FakeSource) -> list[tuple[str, list[int], int]]:
    """What read_models hands over: (model, its version numbers, version pages asked for by then)."""
    reporter = run.Reporter(io.StringIO(), terminal=False)
    handed = []
    for snapshot in mlflow.read_models(source, (), reporter):
        pages = sum(1 for path, _, f in source.asked if path == "model-versions/search" and f is None)
        handed.append((snapshot.name, [v.version for v in snapshot.versions], pages))
    return handed


def test_a_model_is_handed_over_once_its_versions_are_in_while_the_rest_is_still_read(monkeypatch):
    monkeypatch.setattr(mlflow, "VERSIONS_PAGE", 2)
    source = FakeSource(["a", "b", "c", "empty"], [("a", 1), ("a", 2), ("b", 1), ("b", 3), ("c", 2)])
    handed = read(source)
    assert [(name, numbers) for name, numbers, _ in handed] == \
        [("a", [1, 2]), ("b", [1, 3]), ("c", [2]), ("empty", [])]
    # "a" was complete when the second page began with "b": handed over before the third page was asked for.
    assert handed[0][2] == 2 and handed[-1][2] == 3


def test_a_source_that_ignores_the_order_gives_every_model_whole_in_the_end(monkeypatch):
    monkeypatch.setattr(mlflow, "VERSIONS_PAGE", 2)
    # Newest first, as MLflow orders versions when not told otherwise: "a" resumes after "b" began.
    source = FakeSource(["a", "b"], [("a", 3), ("b", 2), ("a", 2), ("b", 1), ("a", 1)])
    handed = read(source)
    # "a" looked complete when "b" began, and was handed over; it resumed, so it comes again, whole, at the end,
    # with "b", which was not handed over before the order was found broken.
    assert [(name, numbers) for name, numbers, _ in handed] == [("a", [3]), ("a", [1, 2, 3]), ("b", [1, 2])]


def test_the_summary_reports_a_model_imported_twice_as_one():
    first = run.ImportOutcome("a", run.IMPORTED, changes=3)
    again = run.ImportOutcome("a", run.UPDATED, changes=2)
    assert run._again(first, again) == run.ImportOutcome("a", run.IMPORTED, changes=5)
    assert run._again(run.ImportOutcome("a", run.FAILED, "alias to a version not read yet"), first) == first
