"""The native wire format of the serving history: an answer as of an instant, and a model's timeline.

Instants are epoch milliseconds (floored, as everywhere) with an ``_iso`` twin to the microsecond: a client
that passes a segment's ``start_iso`` back as ``as_of`` gets exactly that segment's version.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .timestamps import epoch_ms, iso

if TYPE_CHECKING:  # the edge renders what the use cases return; it needs no service at run time
    from ..services.history import HistoricAnswer, Segment, Timeline, Track


def _instant(name: str, when: datetime | None) -> dict[str, Any]:
    return {name: epoch_ms(when) if when else None, f"{name}_iso": iso(when) if when else None}


def historic_json(a: HistoricAnswer) -> dict[str, Any]:
    """``GET .../stages/{stage}?as_of=`` and ``.../aliases/{alias}?as_of=``."""
    return {
        "model": a.model_name,
        "model_then": a.name_then,
        **_instant("as_of", a.as_of),
        "stage": a.stage,
        "alias": a.alias,
        "version": a.version,
        "run_id": a.run_id,
        "source": a.source,
        **_instant("since", a.since),
        "event_id": a.event_id,
        "actor": a.actor,
        "version_exists": a.version_exists,
        "trail_matches_live": a.trail_matches_live,
    }


def _segment_json(s: Segment) -> dict[str, Any]:
    return {"version": s.version, **_instant("start", s.start), **_instant("end", s.end), "actor": s.actor,
            "event_id": s.event_id, "run_id": s.run_id, "version_exists": s.version_exists}


def _track_json(t: Track) -> dict[str, Any]:
    return {"kind": t.kind, "name": t.name, "segments": [_segment_json(s) for s in t.segments],
            "replayed_version": t.replayed_version, "live_version": t.live_version,
            "trail_matches_live": t.trail_matches_live}


def timeline_json(t: Timeline) -> dict[str, Any]:
    """``GET /models/{name}/timeline``."""
    return {"model": t.model_name, **_instant("since", t.since), **_instant("until", t.until),
            **_instant("generated_at", t.generated_at), "trail_matches_live": t.trail_matches_live,
            "tracks": [_track_json(track) for track in t.tracks]}
