"""What a subscription matches: *topics*, the audit action alone (``version.transitioned``) or with the stage it
moves to (``version.transitioned:Production``). The outbox trigger matches a webhook's ``topics`` against each
new audit event's two topics, so every dialect's event names are translated here, once, when a webhook is
saved."""
from __future__ import annotations

# Databricks registry-webhook events -> topics (mirrored in migration 0014 for webhooks stored before it).
DATABRICKS = {
    "MODEL_VERSION_CREATED": ("version.created",),
    "MODEL_VERSION_TRANSITIONED_STAGE": ("version.transitioned",),
    # Per stage: an alias request is a request.created too, but not a transition request.
    "TRANSITION_REQUEST_CREATED": tuple(f"request.created:{stage}" for stage in ("None", "Staging", "Production",
                                                                                 "Archived")),
    "COMMENT_CREATED": ("comment.created",),
    "REGISTERED_MODEL_CREATED": ("model.created",),
    "MODEL_VERSION_TAG_SET": ("version.tag_set",),
    "MODEL_VERSION_TRANSITIONED_TO_STAGING": ("version.transitioned:Staging",),
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION": ("version.transitioned:Production",),
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED": ("version.transitioned:Archived",),
    "TRANSITION_REQUEST_TO_STAGING_CREATED": ("request.created:Staging",),
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED": ("request.created:Production",),
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED": ("request.created:Archived",),
}


def databricks_topics(events: list[str]) -> list[str]:
    return sorted({topic for event in events for topic in DATABRICKS[event]})


def databricks_event(subscribed: list[str], action: str, to_stage: str | None) -> str | None:
    """The Databricks event name a delivery of this audit event carries: the stage-specific one if the webhook
    subscribed to it, else the general one (one delivery per webhook and event, never two)."""
    specific = f"{action}:{to_stage or ''}"
    matching = [event for event in subscribed if {specific, action} & set(DATABRICKS[event])]
    # The stage-specific event (its only topic is this one) wins over the general one.
    return min(matching, key=lambda event: DATABRICKS[event] != (specific,), default=None)


# MLflow 3 webhook events ("entity.action") -> topics. Prompt and budget events are accepted (the MLflow client
# may subscribe to them) but this registry has no prompts or budgets: they never fire.
MLFLOW = {
    "registered_model.created": ("model.created",),
    "model_version.created": ("version.created",),
    "model_version_tag.set": ("version.tag_set",),
    "model_version_tag.deleted": ("version.tag_deleted",),
    "model_version_alias.created": ("alias.set",),
    "model_version_alias.deleted": ("alias.deleted",),
    **{event: () for event in (
        "prompt.created", "prompt_version.created", "prompt_tag.set", "prompt_tag.deleted",
        "prompt_version_tag.set", "prompt_version_tag.deleted", "prompt_alias.created", "prompt_alias.deleted",
        "budget_policy.exceeded")},
}


def mlflow_topics(events: list[str]) -> list[str]:
    return sorted({topic for event in events for topic in MLFLOW[event]})


def mlflow_event(subscribed: list[str], action: str) -> str | None:
    return next((event for event in subscribed if action in MLFLOW[event]), None)
