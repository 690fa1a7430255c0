"""Runs every example of docs/relay.md, in order, against a fresh Sluice whose providers are the fake upstream.

The page is written for users (http://localhost:3000, https://api.openai.com, placeholder provider keys); only those
addresses and keys are swapped for the test's. curl gets a time limit and no proxy through a private .curlrc.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from e2e_support import (ANTHROPIC_TEXT, ANTHROPIC_UPSTREAM_KEY, CHAT_TEXT, OPENAI_UPSTREAM_KEY, REPO, Admin, running_sluice,
                      wait_until)

DOC = REPO / "docs" / "relay.md"
DOC_PASSWORD = "change-me-now"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks():
    return [(lang, body) for lang, body in BLOCK.findall(DOC.read_text())]


def json_values(text):
    """Every JSON value in `text` (curl prints answers back to back), or None when it is not all JSON."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return values
        try:
            value, at = decoder.raw_decode(text, at)
        except ValueError:
            return None
        values.append(value)


@pytest.fixture(scope="module")
def doc_sluice(upstream):
    with running_sluice(DOC_PASSWORD) as server:
        yield server


def test_every_example_in_the_relay_guide(doc_sluice, upstream):
    found = blocks()
    assert [lang for lang, _ in found].count("sh") >= 8 and [lang for lang, _ in found].count("python") == 2

    def adapt(code):
        return (code.replace("http://localhost:3000", doc_sluice.url)
                    .replace("https://api.openai.com", upstream.base_url)
                    .replace("https://api.anthropic.com", upstream.base_url)
                    .replace("sk-ant-your-anthropic-key", ANTHROPIC_UPSTREAM_KEY)
                    .replace("sk-your-openai-key", OPENAI_UPSTREAM_KEY))

    workdir = tempfile.mkdtemp(prefix="sluice-docs-")
    try:
        with open(os.path.join(workdir, ".curlrc"), "w") as rc:
            rc.write("max-time = 20\nnoproxy = *\n")
        env = dict(os.environ, CURL_HOME=workdir, HOME=workdir)
        env.pop("SLUICE_KEY", None)
        upstream_before = upstream.count()
        ran = {"sh": 0, "python": 0}
        for lang, code in found:
            if lang == "sh" and "sluice serve" in code:
                continue  # the test started its own server
            if lang == "sh":
                script = "\n".join(line for line in adapt(code).splitlines() if not line.startswith("export SLUICE_KEY="))
                if not script.strip():
                    continue
                command = ["bash", "-euo", "pipefail", "-c", script]
            elif lang == "python":
                command = ["python3", "-c", adapt(code)]
            elif lang == "js":
                # Node examples: the npm packages are not part of the test tools; check the syntax when node is here.
                if shutil.which("node"):
                    path = os.path.join(workdir, "example.mjs")
                    with open(path, "w") as f:
                        f.write(code)
                    checked = subprocess.run(["node", "--check", path], capture_output=True, text=True, timeout=30)
                    assert checked.returncode == 0, f"{code}\n{checked.stderr}"
                continue
            else:
                continue
            result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
            where = f"{lang} block:\n{code}\n--- stdout:\n{result.stdout}\n--- stderr:\n{result.stderr}"
            assert result.returncode == 0, where
            ran[lang] += 1
            output = result.stdout
            values = json_values(output) if lang == "sh" else None
            if values is not None:
                assert values, where
                for value in values:
                    assert value.get("success", True) is True, where
                    assert "error" not in value, where
                    if "/api/token/" in code and isinstance(value.get("data"), list):
                        env["SLUICE_KEY"] = value["data"][0]["key"]
            else:
                assert '"error"' not in output and "Traceback" not in output, where
            if lang == "sh" and '"stream": true' in code:
                if "/v1/chat/completions" in code:
                    assert "data: [DONE]\n" in output, where
                if "/v1/messages" in code:
                    assert "event: message_stop" in output, where
            if lang == "python":
                assert CHAT_TEXT in output and ANTHROPIC_TEXT in output, where
        assert ran["python"] == 2 and ran["sh"] >= 8
        assert env.get("SLUICE_KEY", "").startswith("sk-"), "the guide's token block gave a key"

        # Every call the guide made reached the fake upstream once, and is logged and charged.
        calls = upstream.count() - upstream_before
        assert calls >= 16
        root = Admin(doc_sluice.url)
        root.login("root", DOC_PASSWORD)
        [token] = root.data("GET", "/api/token/?p=1&size=20")["items"]

        def logged():
            items = root.data("GET", f"/api/log/self?p=1&size=100&token_id={token['id']}")["items"]
            return items if len(items) == calls else None

        logs = wait_until(logged, 10, f"{calls} logged calls")
        assert all(entry["quota"] > 0 for entry in logs)
        assert {entry["model_name"] for entry in logs} == {"gpt-4o-mini", "text-embedding-3-small", "claude-sonnet-4-5"}
        total = sum(entry["quota"] for entry in logs)
        wait_until(lambda: root.token(token["id"])["used_quota"] == total, 10, "the key's used_quota to be its logged total")
        assert root.token(token["id"])["remain_quota"] == 2_500_000 - total
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
