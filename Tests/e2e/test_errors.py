"""Contract section 7's error table as the SDKs raise it: each failure in the caller's format, with the right status."""
import anthropic
import openai
import pytest

from e2e_support import REFUSE_TRIGGER, assert_charged_exactly, make_anthropic, make_openai

MESSAGES = [{"role": "user", "content": "Say hello"}]


def openai_call(base_url, key, model="gpt-e2e"):
    return make_openai(base_url, key).chat.completions.create(model=model, messages=MESSAGES, max_tokens=64)


def anthropic_call(base_url, key, model="claude-e2e"):
    return make_anthropic(base_url, key).messages.create(model=model, max_tokens=64, messages=MESSAGES)


def expect_openai(error_class, status, code, call):
    with pytest.raises(error_class) as caught:
        call()
    error = caught.value
    assert error.status_code == status
    assert error.code == code, error.body
    assert error.body["message"], error.body
    return error


def expect_anthropic(error_class, status, error_type, code, call):
    with pytest.raises(error_class) as caught:
        call()
    error = caught.value
    assert error.status_code == status
    assert error.body["type"] == "error", error.body
    assert error.body["error"]["type"] == error_type, error.body
    assert error.body["error"]["message"], error.body
    assert error.body["error"].get("code") == code, error.body
    return error


@pytest.fixture
def untouched(upstream):
    """Asserts the test's rejected calls never reach the upstream."""
    before = upstream.count()
    yield
    assert upstream.since(before) == []


def test_bad_key(base_url, untouched):
    unknown = "sk-" + "x" * 48
    expect_openai(openai.AuthenticationError, 401, "invalid_api_key", lambda: openai_call(base_url, unknown))
    expect_openai(openai.AuthenticationError, 401, "invalid_api_key", lambda: make_openai(base_url, unknown).models.list())
    expect_anthropic(anthropic.AuthenticationError, 401, "authentication_error", "invalid_api_key",
                     lambda: anthropic_call(base_url, unknown))


def test_disabled_and_exhausted_keys(admin, base_url, untouched):
    disabled = admin.key()
    admin.data("PUT", "/api/token/?status_only=true", {"id": disabled["id"], "status": 2})
    expect_openai(openai.AuthenticationError, 401, "token_disabled", lambda: openai_call(base_url, disabled["key"]))
    expect_anthropic(anthropic.AuthenticationError, 401, "authentication_error", "token_disabled",
                     lambda: anthropic_call(base_url, disabled["key"]))
    empty = admin.key(unlimited_quota=False, remain_quota=0)
    expect_openai(openai.AuthenticationError, 401, "token_quota_exhausted", lambda: openai_call(base_url, empty["key"]))


def test_model_outside_the_keys_limits(admin, base_url, untouched):
    token = admin.key(model_limits_enabled=True, model_limits="text-embedding-e2e")
    expect_openai(openai.PermissionDeniedError, 403, "model_not_allowed", lambda: openai_call(base_url, token["key"]))
    expect_anthropic(anthropic.PermissionDeniedError, 403, "permission_error", "model_not_allowed",
                     lambda: anthropic_call(base_url, token["key"]))
    assert admin.logs(token["id"]) == []


def test_ip_not_allowed(admin, base_url, untouched):
    token = admin.key(allow_ips="10.0.0.0/8")
    expect_openai(openai.PermissionDeniedError, 403, "ip_not_allowed", lambda: openai_call(base_url, token["key"]))


def test_key_with_too_little_quota(admin, base_url, untouched):
    token = admin.key(unlimited_quota=False, remain_quota=1)
    expect_openai(openai.RateLimitError, 429, "insufficient_quota", lambda: openai_call(base_url, token["key"]))
    expect_anthropic(anthropic.RateLimitError, 429, "rate_limit_error", "insufficient_quota",
                     lambda: anthropic_call(base_url, token["key"]))
    assert admin.logs(token["id"]) == []
    assert admin.token(token["id"])["used_quota"] == 0


def test_group_rate_limit(admin, base_url, upstream):
    admin.data("POST", "/api/group/", {"name": "e2e-rpm", "description": "one call a minute", "ratio": 1, "models": [],
                                       "rpm": 1, "tpm": 0, "selectable": True})
    admin.data("POST", "/api/channel/", {"name": "fake-openai-rpm", "type": "openai", "base_url": upstream.base_url,
                                         "key": "sk-upstream-openai-e2e-secret", "models": ["gpt-e2e"],
                                         "groups": ["e2e-rpm"]})
    token = admin.key(group="e2e-rpm")
    assert openai_call(base_url, token["key"]).choices[0].message.content
    error = expect_openai(openai.RateLimitError, 429, "rate_limit_exceeded", lambda: openai_call(base_url, token["key"]))
    assert int(error.response.headers["retry-after"]) >= 1


def test_no_channel_serves_the_model(admin, base_url):
    admin.data("POST", "/api/model/", {"model": "orphan-e2e", "input_price": 1, "output_price": 1})
    token = admin.key()
    error = expect_openai(openai.APIStatusError, 503, "no_available_channel",
                          lambda: openai_call(base_url, token["key"], model="orphan-e2e"))
    assert "orphan-e2e" in error.body["message"]
    expect_anthropic(anthropic.APIStatusError, 503, "overloaded_error", "no_available_channel",
                     lambda: anthropic_call(base_url, token["key"], model="orphan-e2e"))


def test_model_without_a_price(admin, base_url, untouched):
    token = admin.key()
    expect_openai(openai.BadRequestError, 400, "model_price_unset", lambda: openai_call(base_url, token["key"], model="unpriced-e2e"))


def test_malformed_body(admin, base_url, untouched):
    token = admin.key()
    client = make_openai(base_url, token["key"])
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body={"messages": MESSAGES}, cast_to=object)  # no model
    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "invalid_request_error"


def refused(model):
    return {"model": model, "messages": [{"role": "user", "content": REFUSE_TRIGGER}]}


@pytest.mark.parametrize("model", ["gpt-e2e", "gpt-via-anthropic"])
def test_upstream_refusal_reaches_the_openai_sdk_in_its_format(admin, base_url, upstream, model):
    token = admin.key()
    before = upstream.count()
    with pytest.raises(openai.BadRequestError) as caught:
        make_openai(base_url, token["key"]).chat.completions.create(max_tokens=64, **refused(model))
    assert caught.value.status_code == 400
    assert REFUSE_TRIGGER in caught.value.body["message"]
    assert caught.value.body["type"] == "invalid_request_error"
    assert upstream.count() == before + 1, "a refusal is not retried on another channel"
    # a refused call is not charged: after one good call, the key has paid for exactly that one
    make_openai(base_url, token["key"]).chat.completions.create(model=model, messages=MESSAGES, max_tokens=64)
    assert_charged_exactly(admin, token["id"], 1)


@pytest.mark.parametrize("model", ["claude-e2e", "claude-via-openai"])
def test_upstream_refusal_reaches_the_anthropic_sdk_in_its_format(admin, base_url, upstream, model):
    token = admin.key()
    with pytest.raises(anthropic.BadRequestError) as caught:
        make_anthropic(base_url, token["key"]).messages.create(max_tokens=64, **refused(model))
    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert REFUSE_TRIGGER in caught.value.body["error"]["message"]
    make_anthropic(base_url, token["key"]).messages.create(model=model, max_tokens=64, messages=MESSAGES)
    assert_charged_exactly(admin, token["id"], 1)
