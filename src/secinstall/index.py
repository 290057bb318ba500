"""Package index client: PEP 691 JSON with PEP 503 HTML as fallback, and find-links.

Turns a project name into the `IndexFile`s that every configured location lists for it,
with the hashes, `requires-python`, yanked state, upload time and PEP 740 provenance URL
that the index gives.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

from packaging.utils import canonicalize_name

from .client import Client, parallel_map, redact_url
from .errors import FetchError
from .models import IndexFile

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
)
HASH_NAMES = ("sha256", "sha384", "sha512")
DIST_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")


def project_url(index_url: str, name: str) -> str:
    return index_url.rstrip("/") + "/" + canonicalize_name(name) + "/"


def _clean_hashes(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {k: v.lower() for k, v in raw.items() if k in HASH_NAMES and isinstance(v, str) and v}


def _text(value: object) -> str | None:
    """An optional string field; any other type (from a broken index) counts as absent."""
    return value if isinstance(value, str) and value else None


def parse_json(body: bytes, page_url: str, origin: str) -> list[IndexFile]:
    """Files of a PEP 691 project page."""
    try:
        data = json.loads(body)
        files = data["files"]
        result = []
        for f in files:
            filename, url = f["filename"], f["url"]
            if not isinstance(filename, str) or not isinstance(url, str):
                raise TypeError(f"a file's filename and url must be strings, not {filename!r} "
                                f"and {url!r}")
            yanked = f.get("yanked", False)
            provenance = _text(f.get("provenance"))
            size = f.get("size")
            result.append(IndexFile(
                filename=filename,
                url=urllib.parse.urljoin(page_url, url),
                hashes=_clean_hashes(f.get("hashes")),
                requires_python=_text(f.get("requires-python")),
                yanked=(yanked if isinstance(yanked, str) else "") if yanked else None,
                upload_time=_text(f.get("upload-time")),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                provenance_url=urllib.parse.urljoin(page_url, provenance) if provenance else None,
                origin=origin,
            ))
    # RecursionError: absurdly deep nesting, which json gives up on.
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise FetchError(f"{redact_url(page_url)} is not a valid PEP 691 JSON project page: "
                         f"{exc}") from exc
    return result


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self.links.append(dict(attrs))


def parse_html(body: bytes, page_url: str, origin: str) -> list[IndexFile]:
    """Files of a PEP 503 project page (or a find-links HTML page)."""
    try:
        return _parse_html(body, page_url, origin)
    except ValueError as exc:  # a URL urllib can't parse, e.g. "http://[::1"
        raise FetchError(f"{redact_url(page_url)} is not a valid HTML project page: {exc}") from exc


def _parse_html(body: bytes, page_url: str, origin: str) -> list[IndexFile]:
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", errors="replace"))
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    result = []
    for attrs in parser.links:
        href = attrs.get("href")
        if not href:
            continue
        url = urllib.parse.urljoin(base, href)
        url, _, fragment = url.partition("#")
        filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        if not filename.endswith(DIST_SUFFIXES):
            continue
        algo, _, digest = fragment.partition("=")
        # A bare `data-yanked` (no value) is HTML for an empty value: yanked, no reason.
        yanked = (attrs["data-yanked"] or "") if "data-yanked" in attrs else None
        provenance = attrs.get("data-provenance")
        result.append(IndexFile(
            filename=filename,
            url=url,
            hashes={algo: digest.lower()} if algo in HASH_NAMES and digest else {},
            requires_python=attrs.get("data-requires-python") or None,
            yanked=yanked,
            provenance_url=urllib.parse.urljoin(base, provenance) if provenance else None,
            origin=origin,
        ))
    return result


def fetch_project(client: Client, index_url: str, name: str) -> list[IndexFile]:
    """Every file the index lists for `name` (an empty list when it has none)."""
    url = project_url(index_url, name)
    resp = client.get(url, accept=ACCEPT)
    if resp.status in (404, 410):
        return []
    ctype = resp.headers.get("content-type", resp.headers.get("Content-Type", "")).lower()
    if "json" in ctype:
        return parse_json(resp.body, resp.url, index_url)
    return parse_html(resp.body, resp.url, index_url)


def list_find_links(client: Client, location: str) -> list[IndexFile]:
    """Files at a find-links location: a local directory, a file, or an HTML page."""
    path: Path | None = None
    if location.startswith("file:"):
        from urllib.request import url2pathname  # loads http.client and ssl: only here

        path = Path(url2pathname(urllib.parse.urlsplit(location).path))
    elif "://" not in location:
        path = Path(location)
    if path is None:
        resp = client.get(location, accept="text/html")
        return [] if resp.status in (404, 410) else parse_html(resp.body, resp.url, location)
    if path.is_dir():
        names = sorted(os.listdir(path))
        files = [path / n for n in names if n.endswith(DIST_SUFFIXES)]
    elif path.is_file():
        files = [path]
    else:
        return []
    return [IndexFile(filename=f.name, url=f.resolve().as_uri(), hashes={}, origin=location)
            for f in files]


class Finder:
    """Looks projects up in every configured index and find-links location."""

    def __init__(self, client: Client, index_urls: Sequence[str],
                 find_links: Sequence[str] = ()) -> None:
        self.client = client
        self.index_urls = list(index_urls)
        self.find_links = list(find_links)
        self._links: list[IndexFile] | None = None

    def _find_links_files(self) -> list[IndexFile]:
        if self._links is None:
            self._links = [f for loc in self.find_links
                           for f in list_find_links(self.client, loc)]
        return self._links

    def files(self, name: str) -> list[IndexFile]:
        key = canonicalize_name(name)
        found = [f for url in self.index_urls for f in fetch_project(self.client, url, key)]
        found += [f for f in self._find_links_files()
                  if (parsed := f.name_and_version) and parsed[0] == key]
        return found

    def files_many(self, names: Sequence[str], workers: int = 8) -> dict[str, list[IndexFile]]:
        """`files` for several projects, asked in parallel."""
        self._find_links_files()
        found = parallel_map(self.client, self.files, names, workers=workers)
        return dict(zip(names, found, strict=True))
