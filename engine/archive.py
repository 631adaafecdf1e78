"""Reading zip archives that may be hostile (issue 15): run files and lesson bundles.

``read_zip`` returns every member's bytes, or raises ArchiveError naming the file, the member and
what to do. It refuses member names that could escape the folder they would be unpacked into
(absolute, ``..``, backslashes, drive letters, NUL, names that are not normalised), duplicate
names, encrypted members, more members than ``max_members``, and archives whose headers declare
more than ``limit`` bytes unpacked. The bytes are counted again while they are inflated, so a
header that lies about a member's size is caught too. Damaged, truncated and not-a-zip files end
in the same exception type. Only the standard library: no Qt, no torch.
"""
from __future__ import annotations

import os
import posixpath
import zipfile
from collections.abc import Callable

_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive that cannot be used; the message names the file or member and the fix."""


def check_member_name(name: str, folder: str = "the archive's folder") -> None:
    """Refuse a member name that is not a plain relative path inside the archive's folder."""
    bad = (not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name
           or (len(name) > 1 and name[1] == ":")  # C:... on Windows
           or any(part in ("..", "") for part in name.rstrip("/").split("/"))
           or posixpath.normpath(name) != name.rstrip("/"))
    if bad:
        raise ArchiveError(f"member {name!r} would be unpacked outside {folder} - this file was not "
                           "written by Neural Playground or has been tampered with; it was not opened")


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> bytes:
    """The member's bytes, counting them against ``budget`` (a one-item list: bytes left) as they come."""
    out = bytearray()
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            budget[0] -= len(chunk)
            if len(out) > info.file_size or budget[0] < 0:
                raise ArchiveError(f"member {info.filename!r} unpacks to more than its header says or more than "
                                   "the size limit - the file is damaged or hostile; it was not opened")
    return bytes(out)


def check_infos(infos: list[zipfile.ZipInfo], limit: int, folder: str = "the archive's folder",
                max_members: int | None = None, check_names: Callable[[list[str]], None] | None = None) -> None:
    """The checks made before any byte is inflated; ``check_names`` adds the format's own (allowed members)."""
    if max_members is not None and len(infos) > max_members:
        raise ArchiveError(f"it holds {len(infos):,} members, more than the limit of {max_members:,} - "
                           "it was not opened (a damaged or hostile file)")
    names = [i.filename for i in infos]
    for n in names:
        check_member_name(n, folder)
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ArchiveError(f"member {n!r} appears twice - the file was tampered with; it was not opened")
        seen.add(n)
    enc = next((i.filename for i in infos if i.flag_bits & 0x1), None)
    if enc is not None:
        raise ArchiveError(f"member {enc!r} is encrypted - Neural Playground writes no passwords; "
                           "save the file again without encryption")
    if check_names is not None:
        check_names(names)
    declared = sum(i.file_size for i in infos)
    if declared > limit:
        raise ArchiveError(f"the members would unpack to {declared:,} bytes, more than the limit of {limit:,} - "
                           "it was not opened (a damaged or hostile file)")


def read_zip(path: str | os.PathLike, limit: int, *, what: str, extension: str, fix: str,
             folder: str = "the archive's folder", max_members: int | None = None,
             check_names: Callable[[list[str]], None] | None = None) -> dict[str, bytes]:
    """Every member's bytes by name, read defensively (module docstring). ``what`` names the kind of
    file ("run file"), ``fix`` is the advice for a damaged one. Raises ArchiveError (or the error
    ``check_names`` raises, re-raised as its own type with the file's name in front) only."""
    name = os.path.basename(os.fspath(path))
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArchiveError(f"{name}: no such file") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"{name} is not a readable {what} ({exc}) - it may be truncated or not a "
                           f"{extension} file; {fix}") from None
    try:
        with zf:
            infos = zf.infolist()
            check_infos(infos, limit, folder, max_members, check_names)
            budget = [limit]
            return {i.filename: read_member(zf, i, budget) for i in infos}
    except ArchiveError as exc:
        raise type(exc)(f"{name}: {exc}") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        # CRC mismatch, a truncated member, an unsupported compression method
        raise ArchiveError(f"{name} is damaged ({type(exc).__name__}: {exc}) - it was not opened; {fix}") from None


def write_zip(members: dict[str, bytes]) -> bytes:
    """A deflated zip of ``members`` (names checked like reading checks them)."""
    import io

    for n in members:
        check_member_name(n)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return buf.getvalue()
