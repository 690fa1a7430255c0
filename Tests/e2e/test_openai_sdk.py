"""The official `openai` Python SDK against Sluice, on an `openai` channel."""
import pytest

from e2e_support import (CHAT_TEXT, CHAT_USAGE, COMPLETION_TEXT, COMPLETION_USAGE, EMBEDDING, EMBEDDING_PROMPT_TOKENS,
                      OPENAI_CHANNEL_MODELS, ANTHROPIC_CHANNEL_MODELS, OPENAI_UPSTREAM_KEY, assert_charged_exactly,
                      check_logged, make_openai)

MESSAGES = [{"role": "user", "content": "Say hello"}]


def check_upstream_saw(upstream, path, model, client_key):
    seen = upstream.last
    assert seen.path == path
    assert seen.headers.get("authorization") == "Bearer " + OPENAI_UPSTREAM_KEY, "the channel key goes upstream"
    assert client_key not in repr(seen.headers) and client_key not in repr(seen.body), "the caller's key never goes upstream"
    assert seen.body["model"] == model
    return seen


def check_log(entry, token, model, usage, stream):
    check_logged(entry, model, usage, stream, token_name=token["name"], group="default")


def test_chat_completion(admin, base_url, upstream):
    token = admin.key()
    client = make_openai(base_url, token["key"])
    answer = client.chat.completions.create(model="gpt-e2e", messages=MESSAGES)
    assert answer.choices[0].message.content == CHAT_TEXT
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == CHAT_USAGE
    seen = check_upstream_saw(upstream, "/v1/chat/completions", "gpt-e2e", token["key"])
    assert seen.body["messages"] == MESSAGES
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, token, "gpt-e2e", CHAT_USAGE, stream=False)


def test_chat_completion_stream_with_usage(admin, base_url, upstream):
    token = admin.key()
    client = make_openai(base_url, token["key"])
    chunks = list(client.chat.completions.create(model="gpt-e2e", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CHAT_TEXT
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1, "one usage chunk, as asked"
    assert usage_chunks[0] is chunks[-1] and usage_chunks[0].choices == []
    assert (usage_chunks[0].usage.prompt_tokens, usage_chunks[0].usage.completion_tokens) == CHAT_USAGE
    check_upstream_saw(upstream, "/v1/chat/completions", "gpt-e2e", token["key"])
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, token, "gpt-e2e", CHAT_USAGE, stream=True)


def test_chat_completion_stream_without_usage_is_still_charged(admin, base_url, upstream):
    token = admin.key()
    client = make_openai(base_url, token["key"])
    chunks = list(client.chat.completions.create(model="gpt-e2e", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CHAT_TEXT
    seen = check_upstream_saw(upstream, "/v1/chat/completions", "gpt-e2e", token["key"])
    assert seen.body["stream_options"]["include_usage"] is True, "Sluice asks upstream for usage to charge the call"
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, token, "gpt-e2e", CHAT_USAGE, stream=True)


def test_stream_without_include_usage_gets_no_usage_chunk(admin, base_url):
    client = make_openai(base_url, admin.key()["key"])
    stream = client.chat.completions.create(model="gpt-e2e", messages=MESSAGES, stream=True)
    text = ""
    for chunk in stream:  # the OpenAI quickstart loop
        text += chunk.choices[0].delta.content or ""
    assert text == CHAT_TEXT


def test_completion(admin, base_url, upstream):
    token = admin.key()
    client = make_openai(base_url, token["key"])
    answer = client.completions.create(model="gpt-e2e", prompt="Once", max_tokens=16)
    assert answer.choices[0].text == COMPLETION_TEXT
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == COMPLETION_USAGE
    seen = check_upstream_saw(upstream, "/v1/completions", "gpt-e2e", token["key"])
    assert seen.body["prompt"] == "Once"
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, token, "gpt-e2e", COMPLETION_USAGE, stream=False)


@pytest.mark.parametrize("encoding_format", [None, "float"])
def test_embeddings(admin, base_url, upstream, encoding_format):
    token = admin.key()
    client = make_openai(base_url, token["key"])
    extra = {} if encoding_format is None else {"encoding_format": encoding_format}
    answer = client.embeddings.create(model="text-embedding-e2e", input="hello", **extra)
    assert [round(x, 6) for x in answer.data[0].embedding] == EMBEDDING
    assert answer.usage.prompt_tokens == EMBEDDING_PROMPT_TOKENS
    seen = check_upstream_saw(upstream, "/v1/embeddings", "text-embedding-e2e", token["key"])
    # without an explicit format the SDK asks for base64 and decodes it itself
    assert seen.body["encoding_format"] == (encoding_format or "base64")
    [entry] = assert_charged_exactly(admin, token["id"], 1)
    check_log(entry, token, "text-embedding-e2e", (EMBEDDING_PROMPT_TOKENS, 0), stream=False)


def test_models_list_shows_only_the_keys_models(admin, base_url):
    everything = admin.key()
    ids = sorted(m.id for m in make_openai(base_url, everything["key"]).models.list())
    assert ids == sorted(OPENAI_CHANNEL_MODELS + ANTHROPIC_CHANNEL_MODELS)
    limited = admin.key(model_limits_enabled=True, model_limits="gpt-e2e,claude-e2e")
    ids = sorted(m.id for m in make_openai(base_url, limited["key"]).models.list())
    assert ids == ["claude-e2e", "gpt-e2e"]


def test_key_in_x_api_key_on_openai_endpoints(admin, base_url):
    import requests
    token = admin.key()
    headers = {"x-api-key": token["key"]}
    answer = requests.post(base_url + "/v1/chat/completions", headers=headers, timeout=20,
                           json={"model": "gpt-e2e", "messages": MESSAGES})
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == CHAT_TEXT
    assert requests.get(base_url + "/v1/models", headers=headers, timeout=20).status_code == 200
    assert_charged_exactly(admin, token["id"], 1)
