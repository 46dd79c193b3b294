"""Artifacts' markdown renders inert: raw HTML off, only http/https/mailto links."""

from __future__ import annotations

import re

import pytest
from headwater_operator.ui.markdown import render_artifact, render_markdown, safe_url


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](  javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x](vbscript:msgbox)",
    "![i](javascript:alert(1))",
    "<javascript:alert(1)>",
    "<svg onload=alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
])
def test_hostile_markdown_has_no_tag_attribute_or_script_url(text: str) -> None:
    html = str(render_markdown(text))
    assert "<script" not in html
    assert "<img" not in html
    assert "<svg" not in html
    assert "<iframe" not in html
    assert 'href="javascript' not in html.lower()
    assert 'href="data:' not in html.lower()
    assert 'href="vbscript' not in html.lower()
    assert not re.search(r"<[a-z][^>]*\son\w+\s*=", html, re.IGNORECASE)  # no handler


def test_safe_markdown_keeps_its_links_tables_and_formatting() -> None:
    html = str(render_markdown("**bold** [a](https://x.example/p?q=1) [m](mailto:a@b.c)\n\n"
                               "| k | v |\n|---|---|\n| 1 | 2 |\n"))
    assert "<strong>bold</strong>" in html
    assert 'href="https://x.example/p?q=1"' in html
    assert 'href="mailto:a@b.c"' in html
    assert "<table>" in html
    assert "<td>1</td>" in html


def test_links_allow_only_http_https_and_mailto() -> None:
    assert safe_url("https://a")
    assert safe_url("HTTP://a")
    assert safe_url("mailto:x@y")
    assert not safe_url("javascript:alert(1)")
    assert not safe_url("java\tscript:alert(1)")
    assert not safe_url("/relative")
    assert not safe_url("ftp://a")


def test_table_and_link_artifacts_escape_everything() -> None:
    table = str(render_artifact({"type": "table", "data": {"<th>": ["<td>", None]}}))
    assert table == ('<table><thead><tr><th scope="col">&lt;th&gt;</th></tr></thead>'
                     "<tbody><tr><td>&lt;td&gt;</td></tr><tr><td></td></tr></tbody></table>")
    link = str(render_artifact({"type": "link", "data": {
        "link": "https://e.example/?a=1&b=<2>", "link_text": "<b>x</b>"}}))
    assert link == ('<a href="https://e.example/?a=1&amp;b=&lt;2&gt;" '
                    'rel="nofollow noopener noreferrer">&lt;b&gt;x&lt;/b&gt;</a>')


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)",
    "data:image/png;base64,AAAA", "vbscript:msgbox", "//evil.example/x.png",
    "https:evil.example/x.png", "mailto:a@b.c", "/relative.png", "",
])
def test_image_artifacts_load_only_absolute_http_and_https_urls(url: str) -> None:
    html = str(render_artifact({"type": "image", "data": url}))
    assert "<img" not in html
    assert html.startswith("<span>")


def test_image_and_progress_artifacts_render_escaped() -> None:
    image = str(render_artifact({"type": "image", "key": "k",
                                 "data": "HTTP://e.example/a.png?x=<1>"},
                                image_origins=("http://e.example",)))
    assert image == ('<img src="HTTP://e.example/a.png?x=&lt;1&gt;" alt="k" loading="lazy" '
                     'referrerpolicy="no-referrer">')
    assert str(render_artifact({"type": "progress", "data": 140})) == (
        '<progress max="100" value="100"></progress> <span>100%</span>')
    assert str(render_artifact({"type": "progress", "data": "<b>"})) == (
        "<pre>&#34;&lt;b&gt;&#34;</pre>")
