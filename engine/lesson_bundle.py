"""Lesson bundles (``.nplesson``): one or more lesson files in a zip, to pass lessons around.

Members, all at the top level of the zip: ``<name>.json`` lesson files (the format
engine.lessons.load_lesson reads) and at most an optional ``README.md`` or ``README.txt``;
nothing else. Reading goes through engine.archive (issue 15): names that could escape the folder,
more than MAX_MEMBERS members or MAX_UNPACKED bytes unpacked (by the headers and counted again
while reading), damaged or encrypted archives are refused, and so is every lesson that
lesson_from_dict refuses, with the member's name and the field.

Installing writes each lesson, atomically, to ``<user folder>/<name>.json``; the app passes its
data folder's ``lessons`` sub-folder (this module knows no Qt). A lesson whose name a shipped
lesson has is refused; installing a lesson already installed replaces it (a re-install).
Either every lesson of a bundle is installed or, when anything is wrong, none.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable

from engine import archive as A
from engine import lessons as LS
from engine import spec as S

EXTENSION = ".nplesson"
MAX_UNPACKED = 20 * 1024 ** 2  # bytes all members may unpack to together
MAX_MEMBERS = 50
READMES = ("README.md", "README.txt")
FOLDER = "the lessons folder"


class BundleError(A.ArchiveError):
    """A bundle that cannot be installed; the message names the bundle, the member and the fix."""


def _check_names(names: list[str]) -> None:
    for n in names:
        if n in READMES:
            continue
        if "/" in n or not n.endswith(".json"):
            raise BundleError(f"unknown member {n!r} - a lesson bundle holds only lesson files (name.json at the "
                              "top level) and an optional README.md or README.txt; it was not installed")
    if not any(n.endswith(".json") for n in names):
        raise BundleError("it holds no lesson file (name.json) - export the lessons again")
    if all(n in names for n in READMES):
        raise BundleError("it holds both README.md and README.txt - keep one")


def read_bundle(path: str | os.PathLike, limit: int = MAX_UNPACKED) -> tuple[list[LS.Lesson], dict[str, bytes], str]:
    """(lessons, their JSON bytes by lesson name, README text) of a bundle; raises BundleError only."""
    name = os.path.basename(os.fspath(path))
    try:
        raw = A.read_zip(path, limit, what="lesson bundle", extension=EXTENSION, folder=FOLDER,
                         max_members=MAX_MEMBERS, fix="ask for the bundle again", check_names=_check_names)
    except A.ArchiveError as exc:
        raise BundleError(str(exc)) from None
    lessons, data = [], {}
    for member, blob in raw.items():
        if member in READMES:
            continue
        try:
            d = json.loads(blob.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: [[[[...]]]]
            raise BundleError(f"{name}: member {member!r} is not valid JSON ({exc}) - fix the lesson file and "
                              "make the bundle again") from None
        try:
            les = LS.lesson_from_dict(d, member)
        except LS.LessonError as exc:
            raise BundleError(f"{name}: {exc}") from None
        _check_designs(name, member, les)
        if member != les.name + ".json":
            raise BundleError(f"{name}: member {member!r} holds the lesson named {les.name!r} - a lesson file is "
                              f"named after its lesson; rename it {les.name}.json")
        lessons.append(les)
        data[les.name] = blob
    readme = next((raw[r] for r in READMES if r in raw), b"").decode("utf-8", "replace")
    return lessons, data, readme


def _check_designs(bundle: str, member: str, les: LS.Lesson) -> None:
    """The design and every variant pass the editor's checks (layer kinds, params, shapes): a lesson
    someone sent is refused here, not when its run fails half-way."""
    from engine import validation

    for variant in ["design", *les.variants]:
        spec = les.design if variant == "design" else les.variant_spec(variant)
        try:
            errs = validation.errors(validation.validate(spec))
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            errs = [f"{type(exc).__name__}: {exc}"]
        if errs:
            fld = "design" if variant == "design" else f"variants.{variant}"
            raise BundleError(f"{bundle}: {member}: field '{fld}' is not a usable design: "
                              + "; ".join(str(p) for p in errs[:5]))


def install_bundle(path: str | os.PathLike, user_folder: str, shipped_folder: str = LS.LESSONS_DIR) -> list[LS.Lesson]:
    """Install a bundle's lessons into ``user_folder``; returns them (loaded from where they now are).
    Raises BundleError (nothing is written) for a bad bundle or a name clash with a shipped lesson,
    OSError when the folder cannot be written."""
    name = os.path.basename(os.fspath(path))
    lessons, data, _readme = read_bundle(path)
    shipped = {les.name for les in LS.all_lessons(shipped_folder)}
    clash = [les.name for les in lessons if les.name in shipped]
    if clash:
        raise BundleError(f"{name}: the lesson {clash[0]!r} has the name of a lesson that comes with Neural "
                          "Playground - rename it (its 'name' field and its file) and make the bundle again; "
                          "nothing was installed")
    os.makedirs(user_folder, exist_ok=True)
    for les in lessons:
        S.write_bytes_atomic(os.path.join(user_folder, les.name + ".json"), data[les.name])
    return [LS.load_lesson(os.path.join(user_folder, les.name + ".json")) for les in lessons]


def bundle_bytes(lessons: Iterable[LS.Lesson], readme: str = "") -> bytes:
    """A bundle of these lessons (their source files as they are), with an optional README.md."""
    members: dict[str, bytes] = {}
    for les in lessons:
        with open(les.source, "rb") as fh:
            members[les.name + ".json"] = fh.read()
    if readme:
        members["README.md"] = readme.encode("utf-8")
    return A.write_zip(members)


def export_bundle(path: str | os.PathLike, lessons: Iterable[LS.Lesson], readme: str = "") -> int:
    """Write a bundle atomically; returns its size in bytes."""
    data = bundle_bytes(lessons, readme)
    S.write_bytes_atomic(path, data)
    return len(data)
