"""Artifacts as HTML: markdown (sanitized), tables, links, images and progress.

Markdown goes through ``markdown-it-py`` with raw HTML **off** (``<script>``,
``<img onerror=…>`` and every other tag in the text come out as escaped text) and a
link check that allows only ``http``, ``https`` and ``mailto`` URLs (a ``javascript:``,
``data:`` or ``vbscript:`` link, or an image with one, is left as plain text). Tables,
links, images and progress bars are built here with every value escaped; an image
artifact becomes an ``<img>`` (loaded without a referrer) only for an ``http`` or
``https`` URL whose origin the server allows (``headwater ui --image-origin``, the same
list as the Content-Security-Policy's ``img-src``); from any other origin it is a link,
and anything else is shown as text. A markdown artifact's images are left to the CSP.

What it must respect: nothing an artifact holds reaches the page unescaped; the tests
(tests/unit/ui/test_markdown.py) render a hostile artifact and check it is inert.
"""

from __future__ import annotations

import html
import json
from collections.abc import Collection, Mapping
from itertools import zip_longest
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markupsafe import Markup

ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})


def safe_url(url: str, schemes: frozenset[str] = ALLOWED_SCHEMES) -> bool:
    """Whether ``url`` may be a link (or, with ``IMAGE_SCHEMES``, an image's source): an
    absolute URL with one of ``schemes`` and no control characters."""
    text = url.strip()
    if any(ord(c) < 32 for c in text):
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    if parts.scheme.lower() in IMAGE_SCHEMES and not parts.netloc:
        return False  # "https:evil" has no host: not an absolute address
    return parts.scheme.lower() in schemes


def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable("table")
    parser.enable("strikethrough")
    parser.validateLink = safe_url  # type: ignore[method-assign]
    return parser


_MARKDOWN = _parser()


def render_markdown(text: str) -> Markup:
    """``text`` as sanitized HTML; external links open with ``rel="noopener"``."""
    rendered = _MARKDOWN.render(text)
    rendered = rendered.replace("<a href=", '<a rel="nofollow noopener noreferrer" href=')
    return Markup(rendered)  # safe: html off and links checked above


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def render_table(data: Any) -> Markup:
    """A table artifact: rows of objects (header = their keys), an object of columns,
    or rows of lists (no header); anything else as JSON in a ``<pre>``."""
    headers: list[str] = []
    rows: list[list[Any]]
    if isinstance(data, Mapping):
        headers = [str(key) for key in data]
        columns = [v if isinstance(v, list) else [v] for v in data.values()]
        rows = [list(row) for row in zip_longest(*columns, fillvalue=None)]
    elif isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        keys: dict[str, None] = {}
        for row in data:
            keys.update(dict.fromkeys(str(key) for key in row))
        headers = list(keys)
        rows = [[row.get(key) for key in headers] for row in data]
    elif isinstance(data, list) and all(isinstance(r, list | tuple) for r in data):
        rows = [list(row) for row in data]
    else:
        return Markup("<pre>{}</pre>").format(json.dumps(data, indent=2, default=str))
    parts = ["<table>"]
    if headers:
        parts.append("<thead><tr>" + "".join(
            f'<th scope="col">{html.escape(h)}</th>' for h in headers) + "</tr></thead>")
    parts.append("<tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row)
                     + "</tr>")
    parts.append("</tbody></table>")
    return Markup("".join(parts))  # safe: every cell escaped


def render_link(data: Any) -> Markup:
    """A link artifact ``{link, link_text}``: an anchor when the URL is http(s)/mailto,
    else the URL as text."""
    link = str((data or {}).get("link") or "") if isinstance(data, Mapping) else str(data)
    text = str((data or {}).get("link_text") or link) if isinstance(data, Mapping) else link
    if safe_url(link):
        return Markup('<a href="{}" rel="nofollow noopener noreferrer">{}</a>').format(
            link, text)
    return Markup("<span>{} ({})</span>").format(text, link)


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL, lower-cased (as CSP compares them)."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def render_image(data: Any, alt: str, origins: Collection[str] = ()) -> Markup:
    """An image artifact (its URL): an ``<img>`` for an http(s) URL from one of
    ``origins``, a link for one from elsewhere, else the URL as text."""
    url = str(data or "")
    if not safe_url(url, IMAGE_SCHEMES):
        return Markup("<span>{}</span>").format(url)
    if url_origin(url) in origins:
        return Markup('<img src="{}" alt="{}" loading="lazy" referrerpolicy="no-referrer">'
                      ).format(url.strip(), alt)
    return Markup('<a href="{}" rel="nofollow noopener noreferrer" data-testid="image-link">'
                  'Image: {}</a> <span class="muted">(from {}, an origin this server does '
                  'not load images from: headwater ui --image-origin)</span>').format(
                      url.strip(), alt, url_origin(url))


def render_progress(data: Any) -> Markup:
    """A progress artifact (a percentage): a ``<progress>`` bar and its figure."""
    if isinstance(data, bool) or not isinstance(data, int | float):
        return Markup("<pre>{}</pre>").format(json.dumps(data, default=str))
    percent = max(0.0, min(100.0, float(data)))
    return Markup('<progress max="100" value="{}"></progress> <span>{}%</span>').format(
        f"{percent:g}", f"{percent:g}")


def render_artifact(artifact: Mapping[str, Any], image_origins: Collection[str] = ()
                    ) -> Markup:
    """One artifact's content as HTML, by its ``type``; an image artifact loads only from
    ``image_origins``."""
    kind = artifact.get("type")
    data = artifact.get("data")
    if kind == "markdown":
        return render_markdown(data if isinstance(data, str) else json.dumps(data))
    if kind == "table":
        return render_table(data)
    if kind == "link":
        return render_link(data)
    if kind == "image":
        alt = str(artifact.get("description") or artifact.get("key") or "image artifact")
        return render_image(data, alt, image_origins)
    if kind == "progress":
        return render_progress(data)
    return Markup("<pre>{}</pre>").format(json.dumps(data, indent=2, default=str))
