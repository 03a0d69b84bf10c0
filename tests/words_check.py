"""A pytest plugin that reads everything the app renders for a person during the test run
(every page, email and letter drawn from ``templates/``) and fails the run if its visible text
holds a word a person should never have to read: a snake_case key (``draft_served``), a dotted
key (``assessment.draft_plan_target``), an internal id (``hillside-primary-school``) or an ISO
date (``2026-10-13``; dates are written "13 October 2026").

Every message the test mail server receives (``tests/smtp.py``) is read the same way, and a
subject folded onto a blank first line (``Subject: \\n Still overdue``) is a finding too.

Registered from ``tests/conftest.py``, so it runs with any selection of tests, one file or the
whole suite. At the end it lists each finding: the template, the first test that rendered it,
the word and the sentence it was in. ``--no-words-check`` turns it off (to look at something
else first); ``find_words`` is the detector, tested by ``tests/test_words_check.py``.

Visible text: an HTML page's text without ``<script>``, ``<style>``, attribute values (hidden
inputs, links, classes), what a form gives back as typed (``<textarea>``, ``<option>`` values are
attributes) and ``<code>`` (a file or setting shown for an administrator to copy); an email or
letter's whole text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest

# --- the detector ---------------------------------------------------------------------------

SNAKE = re.compile(r"(?<![\w.@/-])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+(?![\w@/-])")
DOTTED = re.compile(r"(?<![\w.@/-])[a-z][a-z0-9_]+(?:\.[a-z][a-z0-9_]+)+(?![\w@/-])")
HYPHENATED = re.compile(r"(?<![\w.@/-])[a-z0-9]+(?:-[a-z0-9]+){2,}(?![\w@/-])")
ISO_DATE = re.compile(r"(?<![\w-])\d{4}-\d{2}-\d{2}(?![\w-])")

# English words written with two or more hyphens, which an id pattern would otherwise catch.
ENGLISH_HYPHENATED = frozenset({
    "day-to-day", "face-to-face", "one-to-one", "up-to-date", "out-of-date", "out-of-area",
    "end-of-year", "year-on-year", "step-by-step", "sign-in-and-out", "co-ordinator",
    "follow-up", "post-16", "mother-in-law", "well-being",
})
# The last part of a dotted word that makes it a web address or a file, not a key.
DOMAINS_AND_FILES = frozenset({"uk", "org", "com", "net", "gov", "example", "io", "toml",
                               "csv", "json", "pdf", "doc", "docx", "odt", "rtf", "txt", "html",
                               "xlsx", "jpg", "jpeg", "png", "exe", "zip", "local"})

# Words that may appear although they look like identifiers: each with its reason. Keep short.
ALLOWED = frozenset({
    # (none yet: case references are capitals, e-mail addresses and URLs are skipped by shape)
})


@dataclass(frozen=True)
class Finding:
    word: str
    kind: str
    sentence: str


def _sentence(text: str, start: int, end: int) -> str:
    """The sentence (or line) around text[start:end], trimmed to a readable length."""
    dot = text.rfind(". ", 0, start)
    left = max(dot + 2 if dot != -1 else 0, text.rfind("\n", 0, start) + 1)
    stops = [i for i in (text.find(". ", end), text.find("\n", end)) if i != -1]
    right = min(stops) + 1 if stops else len(text)
    out = " ".join(text[left:right].split())
    return out if len(out) <= 200 else out[:197] + "..."


def _is_address(text: str, start: int, end: int) -> bool:
    """Whether the word is part of an e-mail address or a URL (the whitespace-separated token
    it is in has an "@", "://", or starts with "/" or "www.")."""
    left = max(text.rfind(c, 0, start) for c in " \n\t(") + 1
    rights = [i for i in (text.find(c, end) for c in " \n\t)") if i != -1]
    token = text[left:min(rights) if rights else len(text)]
    return "@" in token or "://" in token or token.startswith(("/", "www.", "?"))


def find_words(text: str) -> list[Finding]:
    """Every identifier-shaped word in ``text`` (visible text), with its kind and sentence."""
    out: list[Finding] = []
    seen: set[tuple[int, int]] = set()
    checks = (
        (ISO_DATE, "an ISO date (write it as 13 October 2026)"),
        (SNAKE, "a snake_case key"),
        (DOTTED, "a dotted key"),
        (HYPHENATED, "an internal id"),
    )
    for pattern, kind in checks:
        for m in pattern.finditer(text):
            word = m.group(0)
            if any(a <= m.start() < b for a, b in seen):
                continue
            if word in ALLOWED or _is_address(text, m.start(), m.end()):
                continue
            if pattern is DOTTED and word.rsplit(".", 1)[-1] in DOMAINS_AND_FILES:
                continue
            if pattern is HYPHENATED and (word in ENGLISH_HYPHENATED
                                          or ISO_DATE.fullmatch(word)):
                continue
            seen.add((m.start(), m.end()))
            out.append(Finding(word, kind, _sentence(text, m.start(), m.end())))
    return out


class _Visible(HTMLParser):
    SKIP = frozenset({"script", "style", "textarea", "code", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping.append(tag)
        elif tag in ("p", "div", "li", "td", "th", "tr", "h1", "h2", "h3", "h4", "dt", "dd",
                     "br", "label", "legend", "option", "button", "caption", "summary"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()
        elif tag in ("p", "div", "li", "td", "th", "tr", "dt", "dd", "label", "legend",
                     "option", "h1", "h2", "h3", "h4", "caption"):
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """What a person reads on an HTML page (see the module's docstring)."""
    parser = _Visible()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def text_of(name: str, rendered: str) -> str:
    return visible_text(rendered) if name.endswith((".html", ".html.j2")) else rendered


# --- the plugin -----------------------------------------------------------------------------

CHECKED = ("pages/", "email/", "letters/")


@dataclass
class _Seen:
    template: str
    test: str
    finding: Finding


FOLDED_BLANK_SUBJECT = re.compile(rb"^Subject:[ \t]*\r?\n[ \t]", re.MULTILINE | re.IGNORECASE)


def read_mail(item, raw: bytes) -> None:
    """A message the test mail server received (``tests.smtp``): its subject and its text and
    HTML parts are read like a page; a subject folded onto a blank first line
    (``Subject: \\n Still overdue``) is a finding too."""
    check = ACTIVE
    if check is None:
        return
    where = "an email received by the test mail server"  # one finding per word, not per email
    header_end = raw.find(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.find(b"\n\n")
    if FOLDED_BLANK_SUBJECT.search(raw[:header_end if header_end != -1 else len(raw)]):
        check.found.setdefault((where, "Subject"), _Seen(where, check.current, Finding(
            "Subject", "a subject folded onto a blank first line", item.subject.strip())))
    for text in (item.subject, item.text, visible_text(item.html)):
        for f in find_words(text):
            check.found.setdefault((where, f.word), _Seen(where, check.current, f))


ACTIVE: "WordsCheck | None" = None


class WordsCheck:
    def __init__(self) -> None:
        self.current = "(outside a test)"
        self.found: dict[tuple[str, str], _Seen] = {}
        self.rendered = 0
        self._original = None

    def install(self) -> None:
        from jinja2 import Template

        self._original = original = Template.render
        check = self

        def render(template, *args, **kwargs):
            out = original(template, *args, **kwargs)
            name = template.name or ""
            if name.startswith(CHECKED):
                check.rendered += 1
                for f in find_words(text_of(name, out)):
                    check.found.setdefault((name, f.word), _Seen(name, check.current, f))
            return out

        Template.render = render  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            from jinja2 import Template

            Template.render = self._original  # type: ignore[method-assign]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        self.current = item.nodeid

    def pytest_terminal_summary(self, terminalreporter):
        if not self.found:
            if self.rendered:
                terminalreporter.write_line(
                    f"words check: {self.rendered} pages, emails and letters read; no "
                    "identifier-shaped words")
            return
        terminalreporter.section("words a person should not have to read", red=True)
        for seen in sorted(self.found.values(), key=lambda s: (s.template, s.finding.word)):
            f = seen.finding
            terminalreporter.write_line(
                f"{seen.template}: {f.word!r} ({f.kind}) in \"{f.sentence}\"\n"
                f"    first rendered by {seen.test}")
        terminalreporter.write_line(
            f"{len(self.found)} findings in {len({s.template for s in self.found.values()})} "
            "templates (tests/words_check.py; --no-words-check to skip)")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.found and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_addoption(parser):
    parser.addoption("--no-words-check", action="store_true", default=False,
                     help="do not check rendered pages and emails for identifier-shaped words")


def pytest_configure(config):
    if config.getoption("--no-words-check", default=False):
        return
    global ACTIVE
    check = ACTIVE = WordsCheck()
    check.install()
    config.pluginmanager.register(check, "ehc-words-check")
    config._ehc_words_check = check  # type: ignore[attr-defined]


def pytest_unconfigure(config):
    check = getattr(config, "_ehc_words_check", None)
    if check is not None:
        check.uninstall()
    global ACTIVE
    ACTIVE = None
