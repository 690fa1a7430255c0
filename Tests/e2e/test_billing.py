"""Charging through the SDKs: each call logged and charged once, to the key and to the user's balance."""
import concurrent.futures

import requests

from e2e_support import (ANTHROPIC_USAGE, CHAT_USAGE, COMPLETION_USAGE, EMBEDDING_PROMPT_TOKENS, HTTP_TIMEOUT, ROOT_BALANCE,
                      assert_charged_exactly, expected_quota, make_anthropic, make_openai, wait_until)

MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_one_key_over_every_endpoint_is_charged_the_logged_sum(admin, base_url):
    token = admin.key(unlimited_quota=False, remain_quota=1_000_000)
    oai = make_openai(base_url, token["key"])
    ant = make_anthropic(base_url, token["key"])
    oai.chat.completions.create(model="gpt-e2e", messages=MESSAGES)
    list(oai.chat.completions.create(model="gpt-e2e", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    oai.completions.create(model="gpt-e2e", prompt="Once")
    oai.embeddings.create(model="text-embedding-e2e", input=["hello", "world"])
    ant.messages.create(model="claude-e2e", max_tokens=64, messages=MESSAGES)
    with ant.messages.stream(model="claude-via-openai", max_tokens=64, messages=MESSAGES) as stream:
        stream.until_done()
    list(oai.chat.completions.create(model="gpt-via-anthropic", messages=MESSAGES, stream=True))
    oai.models.list()  # not a charged call

    logs = assert_charged_exactly(admin, token["id"], 7)
    seen = sorted((e["model_name"], e["prompt_tokens"], e["completion_tokens"], e["is_stream"], e["quota"]) for e in logs)
    expected = sorted([
        ("gpt-e2e", *CHAT_USAGE, False, expected_quota("gpt-e2e", *CHAT_USAGE)),
        ("gpt-e2e", *CHAT_USAGE, True, expected_quota("gpt-e2e", *CHAT_USAGE)),
        ("gpt-e2e", *COMPLETION_USAGE, False, expected_quota("gpt-e2e", *COMPLETION_USAGE)),
        ("text-embedding-e2e", EMBEDDING_PROMPT_TOKENS, 0, False, expected_quota("text-embedding-e2e", EMBEDDING_PROMPT_TOKENS, 0)),
        ("claude-e2e", *ANTHROPIC_USAGE, False, expected_quota("claude-e2e", *ANTHROPIC_USAGE)),
        ("claude-via-openai", *CHAT_USAGE, True, expected_quota("claude-via-openai", *CHAT_USAGE)),
        ("gpt-via-anthropic", *ANTHROPIC_USAGE, True, expected_quota("gpt-via-anthropic", *ANTHROPIC_USAGE)),
    ])
    assert seen == expected
    for entry in logs:
        assert entry["ip"] == "127.0.0.1" and entry["use_time_ms"] >= 0 and entry["type"] == 2, entry

    total = sum(e["quota"] for e in logs)
    assert admin.token(token["id"])["remain_quota"] == 1_000_000 - total

    # The same figures seen through the key alone.
    headers = {"Authorization": "Bearer " + token["key"]}
    usage = requests.get(base_url + "/api/usage/token", headers=headers, timeout=HTTP_TIMEOUT).json()["data"]
    assert (usage["total_used"], usage["total_available"], usage["request_count"]) == (total, 1_000_000 - total, 7)
    cents = requests.get(base_url + "/v1/dashboard/billing/usage", headers=headers, timeout=HTTP_TIMEOUT).json()["total_usage"]
    assert abs(cents - total / 500000 * 100) < 1e-9


def test_concurrent_streams_are_each_charged_once(admin, base_url):
    token = admin.key()

    def one(i):
        client = make_openai(base_url, token["key"])
        if i % 2:
            chunks = list(client.chat.completions.create(model="gpt-e2e", messages=MESSAGES, stream=True))
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        with make_anthropic(base_url, token["key"]).messages.stream(model="claude-e2e", max_tokens=64, messages=MESSAGES) as s:
            return "".join(s.text_stream)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(one, range(16)))
    assert all(texts)
    logs = assert_charged_exactly(admin, token["id"], 16)
    assert sum(e["quota"] for e in logs) == 8 * expected_quota("gpt-e2e", *CHAT_USAGE) + 8 * expected_quota("claude-e2e", *ANTHROPIC_USAGE)


def test_the_users_balance_pays_for_every_logged_call(admin):
    """Root's keys are internal: root's balance went down by exactly what root's logs say (whatever ran before)."""
    def settled():
        logs, page = [], 1
        while True:
            data = admin.data("GET", f"/api/log/self?p={page}&size=100")
            logs += data["items"]
            if len(logs) >= data["total"] or not data["items"]:
                break
            page += 1
        me = admin.data("GET", "/api/user/self")
        spent = sum(e["quota"] for e in logs)
        state = (me["quota"], me["used_quota"], spent)
        return state if me["used_quota"] == spent and me["quota"] == ROOT_BALANCE - spent else None

    quota, used, spent = wait_until(settled, 10, "root's balance to match root's logs")
    assert spent > 0
