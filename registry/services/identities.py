"""Users and API tokens: create, list, revoke, authenticate, and the start-up bootstrap of an admin; users'
passwords, admin role and deletion (what MLflow's basic-auth API manages: ``api/mlflow/auth.py``).

A password is a second way for a user to sign in, with HTTP Basic ``user:password``, for MLflow scripts that
set MLFLOW_TRACKING_USERNAME/PASSWORD. Unlike a token it is chosen by a person, so it is stored with a slow,
salted KDF (werkzeug's scrypt, as MLflow stores its users' passwords) and needs the user name with it.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import insert
from werkzeug.security import check_password_hash, generate_password_hash

from ..cache.hub import TOKENS
from ..audit import Action, lock_registry_chain, record_registry
from ..auth import SYSTEM, Actor, hash_token, new_token, token_display_prefix, validate_user_name
from ..errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from ..orm import ApiToken, User
from .access import require_admin
from .permissions import drop_principal, drop_stragglers
from ..db.records import TokenRecord, UserRecord, token_record
from ..db.unit_of_work import announce, now, read_only, session, use_case

BOOTSTRAP_ADMIN = "admin"
# The display prefix of REGISTRY_ADMIN_TOKEN. Other tokens show their first characters, which are random;
# this one the operator chose, so its first characters would be a piece of a secret that may not be random.
ENV_TOKEN_PREFIX = "env"
ENV_TOKEN_DESCRIPTION = "REGISTRY_ADMIN_TOKEN"
MAX_TOKEN_LIFETIME = timedelta(days=3650)
# What a token may do. ``metrics``: read GET /metrics and nothing else (a Prometheus server's credential); the
# general authentication below refuses it everywhere else, so no other path can forget to.
SCOPE_ALL = "all"
SCOPE_METRICS = "metrics"
TOKEN_SCOPES = (SCOPE_ALL, SCOPE_METRICS)


MIN_PASSWORD = 12  # MLflow's rule
MAX_PASSWORD = 1000


def _password_hash(password: object) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidArgument(f"Password must be at least {MIN_PASSWORD} characters.", {"field": "password"})
    if len(password) > MAX_PASSWORD or "\x00" in password:
        raise InvalidArgument(f"Password must be at most {MAX_PASSWORD} characters, without NUL.",
                              {"field": "password"})
    return generate_password_hash(password)


def _insert_user(actor: Actor, name: str, is_admin: bool, when, password_hash: str | None = None) -> User:
    user_id = session().execute(
        insert(User).values(name=name, is_admin=is_admin, created_at=when, password_hash=password_hash)
        .on_conflict_do_nothing(index_elements=["name"]).returning(User.id)
    ).scalar_one_or_none()
    if user_id is None:
        raise AlreadyExists(f"User {name} already exists.", {"user": name})
    details = {"user": name, "is_admin": is_admin}
    if password_hash is not None:
        details["password"] = "set"  # that it was set, never anything derived from it
    record_registry(session(), actor, Action.USER_CREATED, details=details, now=when)
    return session().get(User, user_id)


def _user_record(user: User) -> UserRecord:
    return UserRecord(user.name, user.is_admin, user.created_at, user.id, user.password_hash is not None)


@use_case
def create_user(actor: Actor, name: str, *, is_admin: bool = False, password: str | None = None) -> UserRecord:
    """Admins only. With ``password``, the user may also sign in with HTTP Basic ``name:password``."""
    require_admin(actor, "Creating users")
    name = validate_user_name(name)
    digest = None if password is None else _password_hash(password)
    return _user_record(_insert_user(actor, name, is_admin, now(), digest))


@read_only
def list_users(actor: Actor) -> list[UserRecord]:
    require_admin(actor, "Listing users")
    return [_user_record(u) for u in session().scalars(select(User).order_by(User.name))]


def _self_or_admin(actor: Actor, name: str, doing: str) -> str:
    """Checked before the user is looked up, so the answer does not reveal which user names exist."""
    name = validate_user_name(name, field="username")
    if not actor.is_admin and actor.name != name:
        raise PermissionDenied(f"{doing} another user requires an admin.", {"required": "ADMIN"})
    return name


def _user(name: str, *, lock: bool = False) -> User:
    stmt = select(User).where(User.name == name)
    user = session().scalars(stmt.with_for_update() if lock else stmt).one_or_none()
    if user is None:
        raise NotFound(f"User with username={name} not found", {"user": name})
    return user


@read_only
def get_user(actor: Actor, name: str) -> UserRecord:
    """Yourself, or anyone for admins."""
    return _user_record(_user(_self_or_admin(actor, name, "Reading")))


def _proves(user: User, secret: str) -> bool:
    """``secret`` is the user's password, or, for a user without one yet (made with a token), a live token of
    theirs: the credential they sign in with either way."""
    if user.password_hash is not None:
        return check_password_hash(user.password_hash, secret)
    return session().scalar(select(exists().where(
        ApiToken.user_id == user.id, ApiToken.token_hash == hash_token(secret), ApiToken.revoked_at.is_(None),
        (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now()))))


@use_case
def set_password(actor: Actor, name: str, password: str, *, current_password: str | None = None) -> None:
    """Admins set anyone's password; users their own, with their current password (MLflow's rule: a stolen
    session must not be able to take the account over; a user without a password yet proves themself with
    a token of theirs instead), and a new one that differs from it."""
    name = _self_or_admin(actor, name, "Changing the password of")
    user = _user(name, lock=True)
    if actor.name == name:
        if not current_password:
            raise InvalidArgument("Current password is required when changing your own password.",
                                  {"field": "current_password"})
        if not _proves(user, current_password):
            raise InvalidArgument("Current password does not match.", {"field": "current_password"})
        if password == current_password:
            raise InvalidArgument("New password must differ from the current password.", {"field": "password"})
    user.password_hash = _password_hash(password)
    record_registry(session(), actor, Action.USER_UPDATED, details={"user": name, "password": "changed"}, now=now())
    announce(session(), TOKENS)  # remembered sign-ins with the old password end now


@use_case
def set_admin(actor: Actor, name: str, is_admin: bool) -> None:
    """Admins only. Setting the role the user already has changes nothing and records nothing."""
    require_admin(actor, "Changing a user's admin role")
    if not isinstance(is_admin, bool):
        raise InvalidArgument("is_admin must be true or false.", {"field": "is_admin"})
    user = _user(validate_user_name(name, field="username"), lock=True)
    if user.is_admin == is_admin:
        return
    user.is_admin = is_admin
    record_registry(session(), actor, Action.USER_UPDATED, now=now(),
                    details={"user": user.name, "is_admin": {"before": not is_admin, "after": is_admin}})
    announce(session(), TOKENS)  # remembered actors carry the role


@use_case
def delete_user(actor: Actor, name: str) -> None:
    """Admins only, not themselves (they would lock themselves out mid-session, as MLflow refuses too).
    The user's tokens go with them, and so do their grants, on every model and registry-wide: a user created
    later under the same name must not inherit them."""
    require_admin(actor, "Deleting users")
    name = validate_user_name(name, field="username")
    if name == actor.name:
        raise InvalidArgument("Users cannot delete their own account. Ask another admin to delete this user.",
                              {"field": "username"})
    s = session()
    _user(name)
    dropped = drop_principal(actor, name)  # locks the models it changes: before the user row, as every write
    user = _user(name, lock=True)
    stragglers = drop_stragglers(name)
    tokens = s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == user.id))
    s.delete(user)  # its tokens go with it (ON DELETE CASCADE)
    details = {"user": name, "was_admin": user.is_admin, "tokens": tokens, **dropped}
    if stragglers:
        details["grants_removed_unlocked"] = stragglers
    record_registry(s, actor, Action.USER_DELETED, now=now(), details=details)
    announce(s, TOKENS)
    s.flush()


def _minted_with(actor: Actor, when) -> ApiToken | None:
    """The token the actor authenticated with, locked until commit, or None for callers without one (the
    command line, SYSTEM). Checked again here, not only when the request came in: ``revoke_token`` locks it
    FOR UPDATE before revoking its descendants, so a token minted with it either commits first (and is
    revoked with it) or waits and sees it revoked."""
    if actor.token_id is None:
        return None
    parent = session().scalars(
        select(ApiToken).where(ApiToken.id == actor.token_id)
        .with_for_update(read=True, of=ApiToken).execution_options(populate_existing=True)
    ).one_or_none()
    if parent is None or parent.revoked_at is not None:
        raise Unauthenticated("This token has been revoked.")
    if parent.expires_at is not None and parent.expires_at <= when:
        raise Unauthenticated("This token has expired.")
    return parent


def _issue(actor: Actor, user: User, description: str, expires_in: timedelta | None, when,
           parent: ApiToken | None = None, scope: str = SCOPE_ALL) -> tuple[TokenRecord, str]:
    if expires_in is not None and not timedelta(0) < expires_in <= MAX_TOKEN_LIFETIME:
        raise InvalidArgument("expires_in must be positive and at most 10 years.", {"field": "expires_in"})
    if not isinstance(description, str) or len(description) > 1000 or "\x00" in description:
        raise InvalidArgument("description must be text of at most 1000 characters.", {"field": "description"})
    expires_at = when + expires_in if expires_in else None
    if parent is not None and parent.expires_at is not None:
        # A token never outlives the token it was minted with: a short-lived token cannot mint a lasting one.
        expires_at = parent.expires_at if expires_at is None else min(expires_at, parent.expires_at)
    token = new_token()
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), token_prefix=token_display_prefix(token),
                   description=description, created_at=when, expires_at=expires_at,
                   parent_id=parent.id if parent is not None else None, scope=scope)
    session().add(row)
    session().flush()
    record_registry(session(), actor, Action.TOKEN_CREATED, now=when, details={
        "user": user.name, "token_id": row.id, "prefix": row.token_prefix,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None, "parent_token_id": row.parent_id,
        **({"scope": scope} if scope != SCOPE_ALL else {}),
    })
    return token_record(row), token


@use_case
def create_token(actor: Actor, user_name: str, *, description: str = "", expires_in: timedelta | None = None,
                 create_user: bool = False, admin: bool = False, scope: str = SCOPE_ALL) -> tuple[TokenRecord, str]:
    """Issue a token for ``user_name`` (admins for anyone; users for themselves). Returns the record and the
    token itself, which is never stored and cannot be shown again.

    A caller who authenticated with a token and mints one for themself mints a child of it: expiring no later
    than it, and revoked with it, so a short-lived token cannot make itself lasting. A token an admin issues
    for another user is that user's credential, not a copy of the admin's: it does not follow the admin's
    token (rotating an admin token must not cut off every pipeline it issued tokens for; an admin can create
    users and their tokens anyway).

    ``scope="metrics"`` issues a token that may read the metrics and nothing else; only admins issue those."""
    name = validate_user_name(user_name, field="user")
    if scope not in TOKEN_SCOPES:
        raise InvalidArgument(f"scope must be one of {', '.join(TOKEN_SCOPES)}.", {"field": "scope"})
    if scope != SCOPE_ALL:
        require_admin(actor, "Creating metrics tokens")
    # Checked before looking the user up, so the answer does not reveal which user names exist.
    if not actor.is_admin and actor.name != name:
        raise PermissionDenied("You may only create tokens for yourself.", {"user": name})
    when = now()
    existing = session().scalars(select(User).where(User.name == name)).one_or_none()
    if existing is None:
        if not create_user:
            raise NotFound(f"No user named {name}.", {"user": name})
        require_admin(actor, "Creating users")
        existing = _insert_user(actor, name, admin, when)
    elif admin and not existing.is_admin:
        raise InvalidArgument(f"User {name} exists and is not an admin.", {"field": "admin"})
    parent = _minted_with(actor, when) if name == actor.name else None
    return _issue(actor, existing, description, expires_in, when, parent, scope)


@read_only
def list_tokens(actor: Actor, user_name: str | None = None) -> list[TokenRecord]:
    """Without secrets. Admins see everyone's (or one user's); others see their own."""
    if not actor.is_admin:
        if user_name not in (None, actor.name):
            raise PermissionDenied("You may only list your own tokens.")
        user_name = actor.name
    stmt = select(ApiToken).join(ApiToken.user).order_by(ApiToken.id)
    if user_name is not None:
        stmt = stmt.where(User.name == user_name)
    return [token_record(t) for t in session().scalars(stmt)]


def _descendants(token_id: int) -> list[ApiToken]:
    """Every token minted with this one, directly or not, locked, oldest first (the order tokens are locked
    in everywhere: a parent is always older than its children)."""
    tree = select(ApiToken.id).where(ApiToken.parent_id == token_id).cte("descendants", recursive=True)
    tree = tree.union(select(ApiToken.id).where(ApiToken.parent_id == tree.c.id))
    return list(session().scalars(
        select(ApiToken).where(ApiToken.id.in_(select(tree.c.id))).order_by(ApiToken.id)
        .with_for_update(of=ApiToken).execution_options(populate_existing=True)))


@use_case
def revoke_token(actor: Actor, token_id: int) -> TokenRecord:
    """Revoke the token and, in the same transaction, every token minted with it (each revocation audited)."""
    token = session().get(ApiToken, token_id, with_for_update=True)
    if token is None or (not actor.is_admin and token.user.name != actor.name):
        raise NotFound(f"No token with id {token_id}.", {"token_id": token_id})
    when = now()
    revoked = False
    for row in [token, *_descendants(token.id)]:
        if row.revoked_at is None:
            row.revoked_at = when
            details = {"user": row.user.name, "token_id": row.id, "prefix": row.token_prefix}
            if row is not token:
                details["revoked_with"] = token.id
            record_registry(session(), actor, Action.TOKEN_REVOKED, now=when, details=details)
            revoked = True
    if revoked:
        announce(session(), TOKENS)
        session().flush()
    return token_record(token)


def _valid_token(token: str):
    row = session().execute(
        select(ApiToken.id, User.name, User.is_admin, ApiToken.expires_at, ApiToken.revoked_at, ApiToken.scope)
        .join(ApiToken.user).where(ApiToken.token_hash == hash_token(token))
    ).first()
    if row is None:
        raise Unauthenticated("Invalid token.")
    if row.revoked_at is not None:
        raise Unauthenticated("This token has been revoked.")
    if row.expires_at is not None and row.expires_at <= now():
        raise Unauthenticated("This token has expired.")
    return row


@read_only
def authenticate_with_expiry(token: str) -> tuple[Actor, datetime | None]:
    """The principal a token belongs to (with the token's id) and when the token expires, for callers that
    cache the answer; Unauthenticated for unknown, revoked or expired tokens, PermissionDenied for a token
    scoped to the metrics (every request but GET /metrics authenticates here, the console's sign-in too)."""
    row = _valid_token(token)
    if row.scope != SCOPE_ALL:
        raise PermissionDenied("This token may only read the metrics (GET /metrics).")
    return Actor(row.name, row.is_admin, token_id=row.id), row.expires_at


@read_only
def authenticate_scraper(token: str) -> Actor:
    """Who may read the metrics: an admin's token, or a metrics token. Not remembered in the caches: a scrape
    comes every few seconds, and this one query is cheap."""
    row = _valid_token(token)
    if row.scope == SCOPE_METRICS or (row.scope == SCOPE_ALL and row.is_admin):
        return Actor(row.name, False, token_id=row.id)
    raise PermissionDenied("Reading the metrics needs an admin's token or a metrics token.")


@use_case
def ensure_admin_token(token: str) -> bool:
    """REGISTRY_ADMIN_TOKEN: make sure an admin holds this token. Returns True if it was just added.

    A token that was revoked stays revoked: the environment cannot resurrect it.
    """
    if len(token) < 20:
        raise InvalidArgument("REGISTRY_ADMIN_TOKEN must be at least 20 characters long.")
    digest = hash_token(token)
    s = session()
    if s.scalar(select(exists().where(ApiToken.token_hash == digest))):
        return False
    # Every worker of every server runs this at start-up: only one of them may add the token.
    lock_registry_chain(s)
    if s.scalar(select(exists().where(ApiToken.token_hash == digest))):
        return False
    when = now()
    user = s.scalars(select(User).where(User.name == BOOTSTRAP_ADMIN)).one_or_none()
    if user is None:
        user = _insert_user(SYSTEM, BOOTSTRAP_ADMIN, True, when)
    elif not user.is_admin:
        raise InvalidArgument(f"User {BOOTSTRAP_ADMIN} exists and is not an admin.")
    row = ApiToken(user_id=user.id, token_hash=digest, token_prefix=ENV_TOKEN_PREFIX,
                   description=ENV_TOKEN_DESCRIPTION, created_at=when)
    s.add(row)
    s.flush()
    record_registry(s, SYSTEM, Action.TOKEN_CREATED, now=when,
                    details={"user": user.name, "token_id": row.id, "prefix": row.token_prefix, "source": "env"})
    return True


@use_case
def bootstrap_admin_if_empty() -> str | None:
    """On a fresh install (no users at all) create the admin and return its token, to be printed once."""
    s = session()
    lock_registry_chain(s)  # two servers starting at once must not both create an admin
    if s.scalar(select(exists().where(User.id.isnot(None)))):
        return None
    when = now()
    user = _insert_user(SYSTEM, BOOTSTRAP_ADMIN, True, when)
    _, token = _issue(SYSTEM, user, "bootstrap admin token", None, when)
    return token


# Checked against when the user does not exist or has no password, so a wrong user name costs the same time
# as a wrong password and the answer's timing does not tell which user names exist.
_NO_PASSWORD = generate_password_hash("no user has this password")


@read_only
def authenticate_password(name: str, password: str) -> tuple[Actor, None]:
    """The user whose name and password these are (for callers that cache the answer, as tokens do: no
    expiry); Unauthenticated otherwise."""
    row = session().execute(select(User.name, User.is_admin, User.password_hash).where(User.name == name)).first()
    stored = row.password_hash if row is not None and row.password_hash is not None else _NO_PASSWORD
    if not check_password_hash(stored, password) or stored is _NO_PASSWORD:
        raise Unauthenticated("Invalid user name or password.")
    return Actor(row.name, row.is_admin), None
