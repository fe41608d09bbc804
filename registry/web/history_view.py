"""A model's history as the model page shows it: the stage and alias timeline, and the "as of" answer to
"what was served at 2026-11-03 14:00?" (both from ``services/history.py``, as the native API's)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..errors import InvalidArgument
from ..services import history
from ..services.history import HistoricAnswer, Timeline
from .forms import instant

RECENT = timedelta(days=90)  # the timeline's default window: the work grows with the changes it draws


@dataclass(frozen=True)
class ModelHistory:
    timeline: Timeline
    everything: bool  # the whole history, or the recent window
    as_of_text: str  # the picker's value, as typed
    as_of: datetime | None
    answers: tuple[HistoricAnswer, ...]  # what each stage and alias served at ``as_of``
    error: str | None  # why ``as_of_text`` could not be answered


def for_model(actor, name: str, as_of_text: str | None, everything: bool = False) -> ModelHistory:
    since = None if everything else datetime.now(timezone.utc) - RECENT
    timeline = history.timeline(actor, name, since=since)
    answers, as_of, error = [], None, None
    if as_of_text:
        try:
            as_of = instant(as_of_text, "as_of")
            for track in timeline.tracks:
                selector = {"stage": track.name} if track.kind == "stage" else {"alias": track.name}
                answers.append(history.served_at(actor, name, as_of=as_of, **selector))
        except InvalidArgument as exc:
            answers, error = [], exc.message
    return ModelHistory(timeline, everything, as_of_text or "", as_of, tuple(answers), error)
