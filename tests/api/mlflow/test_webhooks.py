"""MLflow 3 webhooks API: admins only (MLflow webhooks are registry-wide), MLflow's error shape for bad input."""
from __future__ import annotations

import pytest

HOOKS = "/api/2.0/mlflow/webhooks"
BODY = {"name": "n", "url": "https://hooks.example/m", "secret": "s3cr3t",
        "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}


def test_only_admins_manage_mlflow_webhooks(secure_client, make_user):
    admin, user = make_user("root", admin=True), make_user("manager", "MANAGE")
    made = secure_client.post(HOOKS, json=BODY, headers=admin).get_json()["webhook"]
    assert "secret" not in made and made["events"] == BODY["events"]
    for method, path, body in [("POST", HOOKS, BODY), ("GET", HOOKS, None), ("GET", f"{HOOKS}/{made['webhook_id']}", None),
                               ("PATCH", f"{HOOKS}/{made['webhook_id']}", {"name": "x"}),
                               ("POST", f"{HOOKS}/{made['webhook_id']}/test", {}),
                               ("DELETE", f"{HOOKS}/{made['webhook_id']}", None)]:
        response = secure_client.open(path, method=method, json=body, headers=user)
        assert response.status_code == 403, (method, path)
        assert response.get_json()["error_code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("change", [
    {"events": [{"entity": "MODEL_VERSION", "action": "EXPLODED"}]}, {"events": "model_version.created"},
    {"url": "ftp://x"}, {"url": "http://hooks.example/m"}, {"status": "TEST_MODE"}, {"name": ""},
])
def test_bad_webhooks_are_invalid_parameter_value(secure_client, make_user, change):
    admin = make_user("root", admin=True)
    response = secure_client.post(HOOKS, json={**BODY, **change}, headers=admin)
    assert response.status_code == 400 and response.get_json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_an_unknown_webhook_is_resource_does_not_exist(secure_client, make_user):
    response = secure_client.get(f"{HOOKS}/424242", headers=make_user("root", admin=True))
    assert response.status_code == 404 and response.get_json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
