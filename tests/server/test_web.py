"""The web page over HTTP against a real runtime: what each caller sees, escaping,
the cookie that renders pages (and never authorizes the API), results and downloads."""

from __future__ import annotations

import html
from collections.abc import Iterator

import httpx
import markupsafe
import pytest

from daisi_async.server.registry.schema import Endpoint, Param
from daisi_async.server.web.render import CSP, daisi_state, signature
from daisi_async.testing import LocalRuntime
from support.web import ALICE, BOB, MARKUP, TOKENS, daisi_id, submit, write_daisies


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    root = write_daisies(tmp_path_factory.mktemp("web-daisies"))
    with LocalRuntime(root, tokens=TOKENS) as rt:
        rt.settle()
        yield rt


@pytest.fixture(scope="module")
def web(runtime: LocalRuntime) -> Iterator[httpx.Client]:
    """httpx at the root of the server, without a token."""
    with httpx.Client(base_url=runtime.url, timeout=60) as c:
        yield c


def cookie(runtime: LocalRuntime, token: str) -> dict[str, str]:
    """The Cookie header the page's script sets for ``token`` on this port."""
    return {"Cookie": f"daisi_token_{runtime.port}={token}"}


def page(web: httpx.Client, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    r = web.get(path, headers=headers or {})
    assert r.headers["content-type"].startswith("text/html"), r.text
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    return r


def test_home_lists_the_daisies_with_their_state(web: httpx.Client) -> None:
    r = page(web, "/")
    assert r.status_code == 200
    text = r.text
    for name in ("Add Two Numbers", "Live Logging", "Web Probe"):
        assert f">{name}</a>" in text
    assert "<code>compute</code>" in text and "<code>live_log_test</code>" in text
    assert 'href="/daisies/local/Add%20Two%20Numbers"' in text
    assert '<span class="state state-ready">ready</span>' in text
    # The Daisi that fails to import is broken, with its (escaped) reason.
    assert '<span class="state state-broken">broken</span>' in text
    assert "ImportError: a &lt;missing&gt; module" in text
    # Text from daisi.toml is escaped.
    assert "Prints markup &lt;b&gt;bold&lt;/b&gt;." in text and "<b>bold</b>" not in text
    assert "Secret Garden" not in text


def test_a_private_daisi_needs_its_owners_token(runtime: LocalRuntime, web: httpx.Client) -> None:
    path = "/daisies/alice/Secret%20Garden"
    for headers in ({}, cookie(runtime, "bob-token"), BOB):
        assert "Secret Garden" not in page(web, "/", headers).text
        r = page(web, path, headers)
        assert r.status_code == 404 and "no Daisi named" in r.text
    for headers in (cookie(runtime, "alice-token"), ALICE):
        assert ">Secret Garden</a>" in page(web, "/", headers).text
        r = page(web, path, headers)
        assert r.status_code == 200 and '<h1 id="daisi-name">Secret Garden</h1>' in r.text
    # A cookie for another port (another runtime on this machine) is not this one's.
    assert "Secret Garden" not in page(web, "/", {"Cookie": "daisi_token_1=alice-token"}).text


def test_a_token_that_is_not_valid_browses_anonymously(
    runtime: LocalRuntime, web: httpx.Client
) -> None:
    r = page(web, "/", cookie(runtime, "nope"))
    assert r.status_code == 200
    assert "not valid here" in r.text and "Secret Garden" not in r.text


def test_the_cookie_never_authorizes_the_api(
    runtime: LocalRuntime, web: httpx.Client, client: httpx.Client
) -> None:
    secret = daisi_id(client, "alice/Secret Garden", ALICE)
    before = client.get("/v1/executions", headers=ALICE).json()["executions"]
    alice_cookie = cookie(runtime, "alice-token")
    r = client.get("/v1/daisies/alice/Secret Garden", headers=alice_cookie)
    assert r.status_code == 404
    r = client.post(
        f"/v1/daisies/{secret}/executions",
        json={"endpoint": "recipe", "arguments": {"x": {"value": 1}}},
        headers=alice_cookie,
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.get("/v1/executions", headers=ALICE).json()["executions"] == before
    assert submit(client, secret, "recipe", {"x": 1}, ALICE)["status"] == "FINISHED"


def test_daisi_page_shows_doc_endpoints_and_forms(web: httpx.Client) -> None:
    r = page(web, "/daisies/local/Web%20Probe")
    assert r.status_code == 200
    text = r.text
    # DAISI.md is Markdown with raw HTML shown as text, and no javascript: link.
    assert "<h1>Web Probe</h1>" in text
    assert html.escape(MARKUP) in text and MARKUP not in text
    assert "[a link that must not run](javascript:window.__pwned=3)" in text
    assert 'href="javascript:' not in text
    assert "shout(text: str = &#39;hello&#39;) -&gt; str" in text
    assert 'data-endpoint="shout"' in text and 'name="text"' in text
    assert 'placeholder="default: &#39;hello&#39;"' in text
    assert "What to print and return." in text  # the parameter's description
    assert page(web, "/daisies/Web%20Probe").status_code == 200  # by plain name
    assert page(web, "/daisies/web-probe").status_code == 200  # by folder name


def test_execution_page_escapes_logs_and_results(web: httpx.Client, client: httpx.Client) -> None:
    probe = daisi_id(client, "Web Probe")
    done = submit(client, probe, "shout", {"text": MARKUP})
    text = page(web, f"/executions/{done['id']}").text
    assert MARKUP not in text
    escaped = str(markupsafe.escape(MARKUP))  # Jinja's autoescape
    assert f'<span class="line">{escaped}\n</span>' in text
    assert "&lt;script&gt;" in text.split('id="result-json"')[1]
    assert 'id="cancel" hidden' in text
    assert "<code>&#34;&lt;script&gt;window.__pwned" in text  # the argument summary


def test_failed_execution_shows_the_remote_traceback(
    web: httpx.Client, client: httpx.Client
) -> None:
    probe = daisi_id(client, "Web Probe")
    done = submit(client, probe, "fail", {"message": "<b>no</b>"})
    assert done["status"] == "FAILED"
    text = page(web, f"/executions/{done['id']}").text
    traceback = text.split('id="traceback">')[1].split("</pre>")[0]
    assert "Traceback (most recent call last)" in traceback
    assert "ValueError: &lt;b&gt;no&lt;/b&gt;" in traceback


def test_a_result_that_is_not_json_is_offered_as_a_download(
    web: httpx.Client, client: httpx.Client
) -> None:
    probe = daisi_id(client, "Web Probe")
    done = submit(client, probe, "payload", {"size": 1000})
    assert done["result"]["encoding"] == "dill"
    text = page(web, f"/executions/{done['id']}").text
    size = done["result"]["size"]
    assert f"{size} bytes of dill" in text
    assert f'href="/executions/{done["id"]}/download"' in text
    r = web.get(f"/executions/{done['id']}/download")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="{done["id"]}.dill"'
    assert r.content == client.get(f"/v1/executions/{done['id']}/result").content
    assert len(r.content) == size


def test_other_callers_executions_are_404_pages(
    runtime: LocalRuntime, web: httpx.Client, client: httpx.Client
) -> None:
    did = daisi_id(client, "Add Two Numbers")
    mine = submit(client, did, "compute", {"firstNumber": 1, "secondNumber": 1}, ALICE)["id"]
    assert page(web, f"/executions/{mine}", cookie(runtime, "alice-token")).status_code == 200
    for headers in ({}, cookie(runtime, "bob-token")):
        assert page(web, f"/executions/{mine}", headers).status_code == 404
        assert web.get(f"/executions/{mine}/download", headers=headers).status_code == 404
    assert page(web, "/executions/not-an-id").status_code == 404


def test_executions_page_lists_and_filters(
    runtime: LocalRuntime, web: httpx.Client, client: httpx.Client
) -> None:
    did = daisi_id(client, "Add Two Numbers")
    mine = submit(client, did, "compute", {"firstNumber": 2, "secondNumber": 2}, BOB)["id"]
    bob = cookie(runtime, "bob-token")
    text = page(web, "/executions", bob).text
    assert f'<tr data-eid="{mine}">' in text
    assert mine not in page(web, "/executions").text
    assert mine in page(web, f"/executions?daisi={did}&status=FINISHED", bob).text
    assert mine not in page(web, "/executions?status=FAILED", bob).text
    r = page(web, "/executions?status=BOGUS")
    assert r.status_code == 400 and "unknown status" in r.text
    assert page(web, "/executions?daisi=alice/Secret%20Garden").status_code == 404
    assert page(web, "/executions").status_code == 200


def test_static_files(web: httpx.Client) -> None:
    js = web.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "textContent" in js.text and "innerHTML" not in js.text
    css = web.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert web.get("/static/../pages.py").status_code == 404


# -- view helpers ----------------------------------------------------------------------------


def _param(
    name: str, kind: str, default: str | None = None, annotation: str | None = None
) -> Param:
    return Param(
        name=name,
        kind=kind,
        required=default is None and not kind.startswith("VAR"),
        default=None,
        default_repr=default,
        annotation=annotation,
        description=None,
    )


def test_signature_of_every_parameter_kind() -> None:
    params = (
        _param("a", "POSITIONAL_ONLY", annotation="int"),
        _param("b", "POSITIONAL_OR_KEYWORD", "2"),
        _param("rest", "VAR_POSITIONAL"),
        _param("c", "KEYWORD_ONLY", "None", "str | None"),
        _param("extra", "VAR_KEYWORD", annotation="Any"),
    )
    ep = Endpoint(name="f", params=params, doc=None, returns="dict", is_async=True)
    assert (
        signature(ep)
        == "async f(a: int, /, b=2, *rest, c: str | None = None, **extra: Any) -> dict"
    )
    kw = Endpoint(
        name="g", params=(_param("k", "KEYWORD_ONLY"),), doc=None, returns=None, is_async=False
    )
    assert signature(kw) == "g(*, k)"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"broken": None}, ("ready", None)),
        ({"broken": "SyntaxError"}, ("broken", "SyntaxError")),
        ({"state": "building", "broken": None}, ("building", None)),
        ({"state": "broken", "broken": "pip failed"}, ("broken", "pip failed")),
        ({"state": {"state": "building", "reason": "uv sync"}}, ("building", "uv sync")),
    ],
)
def test_daisi_state(body: dict[str, object], expected: tuple[str, str | None]) -> None:
    assert daisi_state(body) == expected
