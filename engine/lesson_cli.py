"""Headless lessons: ``python main.py lesson --list`` and ``python main.py lesson NAME --check``.

``--check`` trains every variant the lesson's claims need (CPU, the lesson's seeds) and prints
one line per claim; the exit code is 0 only if every claim holds (1 otherwise, 2 for a bad
name). ``--json`` prints the verdicts as one JSON object on stdout instead.

``--install BUNDLE.nplesson`` installs a lesson bundle (engine.lesson_bundle) into
``<data folder>/lessons``, where the app finds it: the data folder is ``--data``, else
NEURAL_PLAYGROUND_DATA, else the app's own (``data_folder``, which main.py passes in: finding
it needs Qt, which this module does not import). Exit code 0 installed, 1 refused (the reason on
stderr, nothing written). Installed lessons are listed and checked too when the data folder is
given by ``--data`` or NEURAL_PLAYGROUND_DATA.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: list[str], data_folder: Callable[[], str] | None = None) -> int:
    """``data_folder`` gives the app's data folder when neither --data nor NEURAL_PLAYGROUND_DATA does."""
    try:
        return _main(argv, data_folder)
    except BrokenPipeError:  # the output went to a pager or `head` that closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _main(argv: list[str], data_folder: Callable[[], str] | None = None) -> int:
    from engine import lessons as LS

    p = argparse.ArgumentParser(prog="main.py lesson", description="List the lessons or check one lesson's claims.")
    p.add_argument("name", nargs="?", help="lesson name (see --list)")
    p.add_argument("--list", action="store_true", help="list the lessons by group")
    p.add_argument("--check", action="store_true", help="train what the lesson trains and check every claim")
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--install", metavar="BUNDLE", help="install a .nplesson lesson bundle where the app finds it")
    p.add_argument("--data", metavar="FOLDER", help="the app's data folder (default: NEURAL_PLAYGROUND_DATA, "
                                                    "else the app's own)")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    data = args.data or os.environ.get("NEURAL_PLAYGROUND_DATA")
    if args.install:
        return _install(args.install, data or (data_folder() if data_folder else None))
    lessons = LS.all_lessons(user_folder=os.path.join(data, "lessons") if data else None)
    if args.list or not args.name:
        group = None
        for les in lessons:
            if les.group != group:
                group = les.group
                print(f"{group}:")
            print(f"  {les.name:24s} {les.title}")
        return EXIT_OK
    match = [les for les in lessons if les.name == args.name]
    if not match:
        print(f"error: no lesson '{args.name}' - python main.py lesson --list shows them", file=sys.stderr)
        return EXIT_USAGE
    les = match[0]
    if not args.check:
        print(f"{les.title} ({les.group})\n\n{les.text}\n")
        for i, s in enumerate(les.steps, 1):
            print(f"{i}. {s.text}")
        return EXIT_OK
    import torch

    torch.set_num_threads(1)  # small nets: one thread is as fast and the results do not depend on the core count
    rep = LS.check_lesson(les, progress=None if args.json else lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps({"lesson": les.name, "ok": rep.ok, "seconds": rep.seconds,
                          "claims": [{"ok": v.ok, "text": v.text} for v in rep.verdicts]}))
    else:
        for v in rep.verdicts:
            print(("PASS  " if v.ok else "FAIL  ") + v.text)
        print(f"{les.name}: {'every claim holds' if rep.ok else 'a claim does not hold'}")
    return EXIT_OK if rep.ok else EXIT_FAILED


def _install(bundle: str, data: str | None) -> int:
    from engine import lesson_bundle as LB

    if not data:
        print("error: give the app's data folder with --data FOLDER (or NEURAL_PLAYGROUND_DATA)", file=sys.stderr)
        return EXIT_USAGE
    folder = os.path.join(data, "lessons")
    try:
        installed = LB.install_bundle(bundle, folder)
    except LB.BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"error: {folder} could not be written ({exc}) - nothing was installed", file=sys.stderr)
        return EXIT_FAILED
    for les in installed:
        print(f"installed {les.name:24s} {les.title} ({les.group}) -> {les.source}")
    return EXIT_OK
