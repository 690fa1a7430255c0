"""The official `anthropic` Python SDK against Sluice, on an `anthropic` channel."""
from e2e_support import (ANTHROPIC_TEXT, ANTHROPIC_UPSTREAM_KEY, ANTHROPIC_USAGE, assert_charged_exactly, check_logged,
                      make_anthropic)

MESSAGES = [{"role": "user", "content": "Say hello"}]


def check_upstream_saw(upstream, model, client_key, stream):
    seen = upstream.last
    assert seen.path == "/v1/messages"
    assert seen.headers.get("x-api-key") == ANTHROPIC_UPSTREAM_KEY, "the channel key goes upstream in x-api-key"
    assert "authorization" not in seen.headers
    assert seen.headers.get("anthropic-version"), "the SDK's anthropic-version reaches the upstream"
    assert client_key not in repr(seen.headers) and client_key not in repr(seen.body), "the caller's key never goes upstream"
    assert seen.body["model"] == model
    assert seen.body["max_tokens"] == 64
    assert bool(seen.body.get("stream")) is stream
    return seen


def check_log(entry, token, model, usage, stream):
    check_logged(entry, model, usage, stream, token_name=token["name"], channel_name="fake-anthropic")


def test_messages_create(admin, base_url, upstream):
    token = admin.key()
    client = make_anthropic(base_url, token["key"])
    message = client.messages.create(model="claude-e2e", max_tokens=64, messages=MESSAGES, system="Be brief")
    assert message.type == "message" and message.role == "assistant"
    assert [block.text for block in message.content] == [ANTHROPIC_TEXT]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == ANTHROPIC_USAGE
    seen = check_upstream_saw(upstream, "claude-e2e", token["key"], stream=False)
    assert seen.body["system"] == "Be brief" and seen.body["messages"] == MESSAGES
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, token, "claude-e2e", ANTHROPIC_USAGE, stream=False)


def test_messages_stream(admin, base_url, upstream):
    token = admin.key()
    client = make_anthropic(base_url, token["key"])
    with client.messages.stream(model="claude-e2e", max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ANTHROPIC_TEXT
    assert [block.text for block in final.content] == [ANTHROPIC_TEXT]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == ANTHROPIC_USAGE
    check_upstream_saw(upstream, "claude-e2e", token["key"], stream=True)
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, token, "claude-e2e", ANTHROPIC_USAGE, stream=True)


def test_messages_create_with_stream_true_yields_raw_events(admin, base_url):
    token = admin.key()
    client = make_anthropic(base_url, token["key"])
    events = list(client.messages.create(model="claude-e2e", max_tokens=64, messages=MESSAGES, stream=True))
    assert [e.type for e in events] == (["message_start", "content_block_start"] + ["content_block_delta"] * 5
                                        + ["content_block_stop", "message_delta", "message_stop"])
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == ANTHROPIC_TEXT
    assert_charged_exactly(admin, token["id"], 1)


def test_key_as_bearer_token(admin, base_url):
    """`auth_token=` makes the SDK send `Authorization: Bearer`; /v1/messages takes the key there too."""
    import anthropic
    token = admin.key()
    client = anthropic.Anthropic(base_url=base_url, auth_token=token["key"], timeout=20, max_retries=0)
    message = client.messages.create(model="claude-e2e", max_tokens=64, messages=MESSAGES)
    assert message.content[0].text == ANTHROPIC_TEXT
    assert_charged_exactly(admin, token["id"], 1)


def test_models_list_through_the_anthropic_sdk(admin, base_url):
    token = admin.key(model_limits_enabled=True, model_limits="claude-e2e")
    assert [m.id for m in make_anthropic(base_url, token["key"]).models.list()] == ["claude-e2e"]
