"""MLflow's auth client, unmodified: ``mlflow.server.get_app_client("basic-auth", tracking_uri=...)``, against a
real gunicorn server, driven as a team on ``mlflow server --app-name basic-auth`` drives it: an admin creates
users and grants, users sign in with MLFLOW_TRACKING_USERNAME/PASSWORD, model owners manage their models'
permissions, and DENY vetoes. Each rule of who may call what is shown denying too."""
from __future__ import annotations

import warnings

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.clients import unique
from tests.server import ADMIN_TOKEN

pytestmark = pytest.mark.slow

PASSWORD = "a long enough password"


@pytest.fixture
def sign_in(monkeypatch, registry_url):
    """``sign_in(user, password)``: the credentials every later client call sends, as MLflow users set them."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)

    def use(user: str, password: str) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)

    return use


@pytest.fixture
def auth(sign_in, registry_url):
    """The basic-auth app client, as the bootstrap admin (whose password here is its token)."""
    sign_in("admin", ADMIN_TOKEN)
    with warnings.catch_warnings():
        # mlflow.server imports MLflow's whole tracking server, which uses APIs its dependencies deprecate.
        warnings.simplefilter("ignore")
        from mlflow.server import get_app_client
        return get_app_client("basic-auth", tracking_uri=registry_url)


def error_code(call) -> str:
    with pytest.raises(MlflowException) as caught:
        call()
    return caught.value.error_code


def test_an_admin_creates_a_user_who_signs_in_and_reads_themself(auth, sign_in):
    name = unique("mia")
    created = auth.create_user(name, PASSWORD)
    assert (created.username, created.is_admin) == (name, False)
    assert auth.get_user(name).id == created.id
    assert error_code(lambda: auth.create_user(name, PASSWORD)) == "RESOURCE_ALREADY_EXISTS"
    sign_in(name, PASSWORD)
    assert auth.get_user(name).username == name
    assert error_code(lambda: auth.get_user("admin")) == "PERMISSION_DENIED"
    assert error_code(lambda: auth.create_user(unique("x"), PASSWORD)) == "PERMISSION_DENIED"
    sign_in(name, "not the password at all")
    assert error_code(lambda: auth.get_user(name)) == "UNAUTHENTICATED"


def test_a_team_manages_a_models_permissions(auth, sign_in):
    owner, reader, outsider = unique("owner"), unique("reader"), unique("outsider")
    for user in (owner, reader, outsider):
        auth.create_user(user, PASSWORD)
    auth.grant_user_permission(owner, "registered_model", "*", "EDIT")  # may create models
    sign_in(owner, PASSWORD)
    model = unique("churn")
    MlflowClient().create_registered_model(model)  # its creator manages it
    auth.grant_user_permission(reader, "registered_model", model, "READ")
    auth.grant_user_permission(outsider, "registered_model", model, "DENY")
    assert error_code(lambda: auth.grant_user_permission(reader, "registered_model", model, "EDIT")) == \
        "RESOURCE_ALREADY_EXISTS"
    assert error_code(lambda: auth.grant_user_permission(reader, "registered_model", model, "OWNER")) == \
        "INVALID_PARAMETER_VALUE"
    assert error_code(lambda: auth.grant_user_permission(reader, "registered_model", "*", "EDIT")) == \
        "PERMISSION_DENIED"  # registry-wide grants are the admins'

    sign_in(reader, PASSWORD)
    assert MlflowClient().get_registered_model(model).name == model
    assert error_code(lambda: auth.grant_user_permission(reader, "registered_model", model, "MANAGE")) == \
        "PERMISSION_DENIED"  # READ does not manage permissions
    mine = auth.get_user_permission(reader, "registered_model", model)
    assert (mine.permission, mine.allowed) == ("READ", True)
    assert error_code(lambda: auth.get_user_permission(owner, "registered_model", model)) == "PERMISSION_DENIED"

    sign_in(outsider, PASSWORD)  # the default `*` READ would let them read: the DENY vetoes it
    assert error_code(lambda: MlflowClient().get_registered_model(model)) == "RESOURCE_DOES_NOT_EXIST"
    assert model not in [m.name for m in MlflowClient().search_registered_models()]

    sign_in("admin", ADMIN_TOKEN)
    vetoed = auth.get_user_permission(outsider, "registered_model", model)
    assert (vetoed.permission, vetoed.allowed) == ("DENY", False)
    sign_in(owner, PASSWORD)
    auth.revoke_user_permission(outsider, "registered_model", model)
    assert error_code(lambda: auth.revoke_user_permission(outsider, "registered_model", model)) == \
        "RESOURCE_DOES_NOT_EXIST"
    sign_in(outsider, PASSWORD)
    assert MlflowClient().get_registered_model(model).name == model


def test_users_change_their_own_password_and_admins_anyones(auth, sign_in):
    name = unique("mia")
    auth.create_user(name, PASSWORD)
    sign_in(name, PASSWORD)
    assert error_code(lambda: auth.update_user_password(name, "another password 1")) == "INVALID_PARAMETER_VALUE"
    auth.update_user_password(name, "another password 1", current_password=PASSWORD)
    assert error_code(lambda: auth.get_user(name)) == "UNAUTHENTICATED"
    sign_in(name, "another password 1")
    assert error_code(lambda: auth.update_user_password("admin", "taken over, sorry")) == "PERMISSION_DENIED"
    sign_in("admin", ADMIN_TOKEN)
    auth.update_user_password(name, "reset by the admin")
    sign_in(name, "reset by the admin")
    assert auth.get_user(name).username == name


def test_admin_role_and_deletion_are_the_admins(auth, sign_in):
    name, other = unique("mia"), unique("ben")
    auth.create_user(name, PASSWORD)
    auth.create_user(other, PASSWORD)
    sign_in(name, PASSWORD)
    assert error_code(lambda: auth.update_user_admin(name, True)) == "PERMISSION_DENIED"
    assert error_code(lambda: auth.delete_user(other)) == "PERMISSION_DENIED"
    sign_in("admin", ADMIN_TOKEN)
    auth.update_user_admin(name, True)
    assert auth.get_user(name).is_admin is True
    sign_in(name, PASSWORD)
    auth.delete_user(other)  # an admin now
    assert error_code(lambda: auth.get_user(other)) == "RESOURCE_DOES_NOT_EXIST"
    assert error_code(lambda: auth.delete_user(name)) == "INVALID_PARAMETER_VALUE"  # not oneself
    sign_in(other, PASSWORD)
    assert error_code(lambda: MlflowClient().search_registered_models()) == "UNAUTHENTICATED"


def test_a_token_user_sets_a_password_with_their_token(auth, sign_in):
    name = unique("svc")
    auth.create_user(name, PASSWORD)
    sign_in("admin", ADMIN_TOKEN)
    assert error_code(lambda: auth.update_user_password("admin", "the admin's password",
                                                         current_password="not the token")) == "INVALID_PARAMETER_VALUE"
    auth.update_user_password("admin", "the admin's password", current_password=ADMIN_TOKEN)
    sign_in("admin", "the admin's password")
    assert auth.get_user("admin").is_admin is True
    sign_in("admin", ADMIN_TOKEN)  # the token still works: a password is a second way in
    assert auth.get_user(name).username == name
