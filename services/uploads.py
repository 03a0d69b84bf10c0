"""Files a professional attaches to advice on the secure page (``services.advice_portal``):
which kinds are taken, how large, and under what name they are kept.

A file is taken by its extension and, where the format has one, its signature (the leading
bytes), so a program renamed ``report.pdf`` is refused; a Word (.docx) or OpenDocument (.odt)
file is opened as the zip it is and must hold what such a document holds. Plain text has no
signature: it is taken unless it is evidently binary. A file's name is reduced to its last
path component, printable, without characters that trouble file systems or headers.
"""

from __future__ import annotations

import io
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Callable, Sequence

MB = 1024 * 1024
MAX_FILE_BYTES = 20 * MB
MAX_TOTAL_BYTES = 50 * MB
MAX_FILES = 10

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"
_BINARY_SIGNATURES = (b"%PDF-", _OLE2, _ZIP, b"\x89PNG", b"\xff\xd8\xff", b"MZ", b"\x7fELF",
                      b"GIF8", b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf")


def _zip_names(data: bytes) -> zipfile.ZipFile | None:
    if not data.startswith(_ZIP):
        return None
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        return None


def _is_docx(data: bytes) -> bool:
    z = _zip_names(data)
    if z is None:
        return False
    names = set(z.namelist())
    return "[Content_Types].xml" in names and "word/document.xml" in names


def _is_odt(data: bytes) -> bool:
    z = _zip_names(data)
    if z is None:
        return False
    try:
        info = z.getinfo("mimetype")
        if info.file_size > 200:
            return False
        return z.read(info).strip() == b"application/vnd.oasis.opendocument.text"
    except (KeyError, zipfile.BadZipFile, ValueError, OSError, RuntimeError):
        return False


def _is_text(data: bytes) -> bool:
    """Plain text has no signature: refuse what is evidently binary."""
    return b"\x00" not in data and not data.startswith(_BINARY_SIGNATURES)


@dataclass(frozen=True)
class Format:
    name: str
    content_type: str
    looks_right: Callable[[bytes], bool]


FORMATS: dict[str, Format] = {
    "pdf": Format("PDF", "application/pdf", lambda b: b"%PDF-" in b[:1024]),
    "doc": Format("Word", "application/msword", lambda b: b.startswith(_OLE2)),
    "docx": Format("Word", "application/vnd.openxmlformats-officedocument."
                   "wordprocessingml.document", _is_docx),
    "odt": Format("OpenDocument text", "application/vnd.oasis.opendocument.text", _is_odt),
    "rtf": Format("RTF", "application/rtf", lambda b: b.startswith(b"{\\rtf")),
    "txt": Format("text", "text/plain; charset=utf-8", _is_text),
    "jpg": Format("JPEG", "image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    "jpeg": Format("JPEG", "image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    "png": Format("PNG", "image/png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
}
ACCEPT = ",".join(f".{ext}" for ext in FORMATS)
ALLOWED_TEXT = "PDF, Word (.doc or .docx), OpenDocument text (.odt), RTF, TXT, JPEG or PNG"


@dataclass
class Upload:
    """A file that passed the checks, as it will be stored."""

    filename: str
    content_type: str
    data: bytes


def safe_filename(raw: str | None) -> str:
    """The last path component, printable, without characters that trouble file systems or
    headers; at most 255 characters with its extension kept."""
    name = unicodedata.normalize("NFC", (raw or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>:|?*;')
    name = name.strip().lstrip(".").strip()
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 254 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:255]
    return name or "document"


def extension(filename: str) -> str:
    return filename.rpartition(".")[2].lower() if "." in filename else ""


def check_file(filename: str, data: bytes) -> str | None:
    """Why a file cannot be accepted, or None. By its extension and, where the format has one,
    its signature (the leading bytes)."""
    ext = extension(filename)
    fmt = FORMATS.get(ext)
    if fmt is None:
        return f"{filename} must be a {ALLOWED_TEXT} file"
    if not data:
        return f"{filename} is empty"
    if len(data) > MAX_FILE_BYTES:
        return f"{filename} must be smaller than {MAX_FILE_BYTES // MB} MB"
    if not fmt.looks_right(data):
        return (f"{filename} is not a {fmt.name} file, although its name ends .{ext}: save it "
                f"as a {ALLOWED_TEXT} file and attach it again")
    return None


def too_many_files(count: int) -> str | None:
    """Why this many files cannot be attached at once, or None."""
    return f"Attach no more than {MAX_FILES} files" if count > MAX_FILES else None


def check_uploads(files: Sequence[tuple[str | None, bytes]]) -> tuple[list[Upload], list[str]]:
    """The files sent (each as its name as sent and its bytes), under safe names, and what is
    wrong with them: each is checked by ``check_file``, and together they must be smaller than
    ``MAX_TOTAL_BYTES``. When anything is wrong, no file is kept."""
    uploads: list[Upload] = []
    problems: list[str] = []
    for raw_name, data in files:
        filename = safe_filename(raw_name)
        problem = check_file(filename, data)
        if problem:
            problems.append(problem)
            continue
        uploads.append(Upload(filename, FORMATS[extension(filename)].content_type, data))
    if not problems and sum(len(u.data) for u in uploads) > MAX_TOTAL_BYTES:
        problems.append(f"The files must be smaller than {MAX_TOTAL_BYTES // MB} MB in total")
    return ([] if problems else uploads), problems
