"""Sluice translates between the formats: the Anthropic SDK on an `openai` channel, the openai SDK on an `anthropic` channel."""
from e2e_support import (ANTHROPIC_MAPPING, ANTHROPIC_TEXT, ANTHROPIC_UPSTREAM_KEY, ANTHROPIC_USAGE, CHAT_TEXT, CHAT_USAGE,
                      OPENAI_MAPPING, OPENAI_UPSTREAM_KEY, assert_charged_exactly, check_logged, make_anthropic,
                      make_openai)

MESSAGES = [{"role": "user", "content": "Say hello"}]
VIA_OPENAI = "claude-via-openai"        # served only by the openai channel
VIA_ANTHROPIC = "gpt-via-anthropic"     # served only by the anthropic channel


def check_log(entry, model, usage, stream, channel):
    check_logged(entry, model, usage, stream, channel_name=channel)


# ---- Anthropic SDK -> openai channel ----

def check_openai_upstream(upstream, client_key, stream):
    seen = upstream.last
    assert seen.path == "/v1/chat/completions"
    assert seen.headers.get("authorization") == "Bearer " + OPENAI_UPSTREAM_KEY
    assert client_key not in repr(seen.headers) and client_key not in repr(seen.body)
    assert seen.body["model"] == OPENAI_MAPPING[VIA_OPENAI], "model_mapping applies upstream"
    assert seen.body["messages"] == [{"role": "system", "content": "Be brief"}] + MESSAGES
    assert bool(seen.body.get("stream")) is stream
    return seen


def test_anthropic_sdk_on_openai_channel(admin, base_url, upstream):
    token = admin.key()
    client = make_anthropic(base_url, token["key"])
    message = client.messages.create(model=VIA_OPENAI, max_tokens=64, system="Be brief", messages=MESSAGES)
    assert message.type == "message" and message.model == VIA_OPENAI
    assert [block.text for block in message.content] == [CHAT_TEXT]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == CHAT_USAGE
    check_openai_upstream(upstream, token["key"], stream=False)
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, VIA_OPENAI, CHAT_USAGE, stream=False, channel="fake-openai")


def test_anthropic_sdk_stream_on_openai_channel(admin, base_url, upstream):
    token = admin.key()
    client = make_anthropic(base_url, token["key"])
    with client.messages.stream(model=VIA_OPENAI, max_tokens=64, system="Be brief", messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == CHAT_TEXT
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == CHAT_USAGE
    seen = check_openai_upstream(upstream, token["key"], stream=True)
    assert seen.body["stream_options"]["include_usage"] is True
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, VIA_OPENAI, CHAT_USAGE, stream=True, channel="fake-openai")


# ---- openai SDK -> anthropic channel ----

def check_anthropic_upstream(upstream, client_key, stream):
    seen = upstream.last
    assert seen.path == "/v1/messages"
    assert seen.headers.get("x-api-key") == ANTHROPIC_UPSTREAM_KEY
    assert seen.headers.get("anthropic-version"), "Sluice sends an anthropic-version the openai SDK does not"
    assert client_key not in repr(seen.headers) and client_key not in repr(seen.body)
    assert seen.body["model"] == ANTHROPIC_MAPPING[VIA_ANTHROPIC], "model_mapping applies upstream"
    assert seen.body["system"] == "Be brief" or seen.body["system"] == [{"type": "text", "text": "Be brief"}]
    assert [m["role"] for m in seen.body["messages"]] == ["user"]
    assert isinstance(seen.body["max_tokens"], int) and seen.body["max_tokens"] > 0, "Anthropic requires max_tokens"
    assert bool(seen.body.get("stream")) is stream
    return seen


OPENAI_MESSAGES = [{"role": "system", "content": "Be brief"}] + MESSAGES


def test_openai_sdk_on_anthropic_channel(admin, base_url, upstream):
    token = admin.key()
    client = make_openai(base_url, token["key"])
    answer = client.chat.completions.create(model=VIA_ANTHROPIC, messages=OPENAI_MESSAGES)
    assert answer.object == "chat.completion" and answer.model == VIA_ANTHROPIC
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == ANTHROPIC_TEXT
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == ANTHROPIC_USAGE
    assert answer.usage.total_tokens == sum(ANTHROPIC_USAGE)
    seen = check_anthropic_upstream(upstream, token["key"], stream=False)
    assert seen.body["max_tokens"] == 1024, "without max_tokens the model price's max_output_tokens is sent"
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, VIA_ANTHROPIC, ANTHROPIC_USAGE, stream=False, channel="fake-anthropic")


def test_openai_sdk_stream_on_anthropic_channel(admin, base_url, upstream):
    token = admin.key()
    client = make_openai(base_url, token["key"])
    chunks = list(client.chat.completions.create(model=VIA_ANTHROPIC, messages=OPENAI_MESSAGES, max_tokens=64, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANTHROPIC_TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and chunks[-1].usage is usage[0] and chunks[-1].choices == []
    assert (usage[0].prompt_tokens, usage[0].completion_tokens) == ANTHROPIC_USAGE
    seen = check_anthropic_upstream(upstream, token["key"], stream=True)
    assert seen.body["max_tokens"] == 64
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, VIA_ANTHROPIC, ANTHROPIC_USAGE, stream=True, channel="fake-anthropic")


def test_openai_sdk_stream_on_anthropic_channel_without_usage(admin, base_url, upstream):
    token = admin.key()
    client = make_openai(base_url, token["key"])
    text = ""
    for chunk in client.chat.completions.create(model=VIA_ANTHROPIC, messages=OPENAI_MESSAGES, stream=True):
        text += chunk.choices[0].delta.content or ""  # the OpenAI quickstart loop
        assert chunk.usage is None
    assert text == ANTHROPIC_TEXT
    check_anthropic_upstream(upstream, token["key"], stream=True)
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, VIA_ANTHROPIC, ANTHROPIC_USAGE, stream=True, channel="fake-anthropic")
