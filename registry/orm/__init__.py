"""Mapped classes, one module per entity family. Named "orm" because "model" already means an ML model here.

Every schema change goes through a migration in migrations/versions; tests check that these classes and
the migrations agree.
"""
from .audit import AuditEvent
from .events import Event, WebhookAttempt, WebhookDelivery
from .idempotency import IdempotencyKey
from .identities import ApiToken, InstanceSecret, PermissionGrant, User
from .models import STAGE_CHECK, ModelAlias, ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag
from .reviews import ApprovalPolicy, Comment, TransitionApproval, TransitionRequest
from .webhooks import RegistryWebhook

__all__ = ["STAGE_CHECK", "ApiToken", "ApprovalPolicy", "AuditEvent", "Comment", "IdempotencyKey", "InstanceSecret", "ModelAlias", "ModelVersion",
           "ModelVersionTag", "PermissionGrant", "RegisteredModel", "RegisteredModelTag", "RegistryWebhook",
           "TransitionApproval", "TransitionRequest", "User", "Event", "WebhookAttempt", "WebhookDelivery"]
