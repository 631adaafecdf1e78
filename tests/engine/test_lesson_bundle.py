"""Lesson bundles (.nplesson): a teacher's lessons install beside the shipped ones, and a hostile or
broken bundle is refused with a message naming the member and the field - nothing is written."""
from __future__ import annotations

import io
import json
import os
import zipfile

import pytest
import torch

from engine import archive as A
from engine import lesson_bundle as B
from engine import lessons as LS


def _shipped(name: str) -> dict:
    with open(os.path.join(LS.LESSONS_DIR, name + ".json"), encoding="utf-8") as fh:
        return json.load(fh)


def _renamed(name: str = "momentum", new: str = "my_momentum") -> dict:
    d = _shipped(name)
    d["name"], d["title"] = new, "My " + d["title"]
    return d


def _zip(path, members: dict[str, bytes | str | dict]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in members.items():
            zf.writestr(n, json.dumps(d) if isinstance(d, dict) else d)
    return path


@pytest.fixture
def user(tmp_path):
    return str(tmp_path / "data" / "lessons")


def _nothing_installed(user):
    assert not os.path.exists(user) or os.listdir(user) == []


def test_renamed_shipped_lesson_installs_and_checks_like_the_shipped_one(tmp_path, user):
    path = _zip(tmp_path / "m.nplesson", {"my_momentum.json": _renamed(), "README.md": "For class 3b"})
    [les] = B.install_bundle(path, user)
    assert les.source == os.path.join(user, "my_momentum.json") and os.path.isfile(les.source)
    listed = LS.all_lessons(user_folder=user)
    assert [x.name for x in listed].count("my_momentum") == 1 and len(listed) == len(LS.all_lessons()) + 1
    shipped = LS.find("momentum")
    assert [s.text for s in les.steps] == [s.text for s in shipped.steps]
    assert [(c.check, c.args) for c in les.claims] == [(c.check, c.args) for c in shipped.claims]
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mine, theirs = LS.check_lesson(les), LS.check_lesson(shipped)
    finally:
        torch.set_num_threads(old)
    assert mine.ok and [v.text for v in mine.verdicts] == [v.text for v in theirs.verdicts]
    # a re-install of the same user lesson replaces it
    d = _renamed()
    d["text"] = "Second edition."
    [again] = B.install_bundle(_zip(tmp_path / "m2.nplesson", {"my_momentum.json": d}), user)
    assert again.text == "Second edition." and os.listdir(user) == ["my_momentum.json"]


def test_export_then_install_round_trips(tmp_path, user):
    src = tmp_path / "src"
    src.mkdir()
    (src / "my_dropout.json").write_text(json.dumps(_renamed("dropout", "my_dropout")))
    les = LS.load_lesson(str(src / "my_dropout.json"))
    B.export_bundle(tmp_path / "out.nplesson", [les], readme="hello")
    with zipfile.ZipFile(tmp_path / "out.nplesson") as zf:
        assert sorted(zf.namelist()) == ["README.md", "my_dropout.json"]
    [back] = B.install_bundle(tmp_path / "out.nplesson", user)
    assert back.variants == les.variants and back.title == les.title


@pytest.mark.parametrize("name", ["../x.json", "/etc/x.json", "a/../../x.json", "..\\x.json", "C:/x.json"])
def test_member_escaping_the_folder_is_refused(tmp_path, user, name):
    path = _zip(tmp_path / "evil.nplesson", {"my_momentum.json": _renamed(), name: _renamed()})
    with pytest.raises(B.BundleError, match="outside the lessons folder") as err:
        B.install_bundle(path, user)
    assert repr(name) in str(err.value) and "evil.nplesson" in str(err.value)
    _nothing_installed(user)


@pytest.mark.parametrize("member", ["payload.pkl", "sub/lesson.json", "notes.md", "lessons/"])
def test_unknown_member_is_named(tmp_path, user, member):
    path = _zip(tmp_path / "u.nplesson", {"my_momentum.json": _renamed(), member: "x"})
    with pytest.raises(B.BundleError, match=f"unknown member '{member}'.*README"):
        B.install_bundle(path, user)
    _nothing_installed(user)


def test_zip_bomb_is_refused_by_its_declared_size(tmp_path, user):
    bomb = "\n" * (B.MAX_UNPACKED + 1)  # 20 MB of newlines deflate to ~20 KB
    path = _zip(tmp_path / "b.nplesson", {"my_momentum.json": _renamed(), "README.txt": bomb})
    assert os.path.getsize(path) < 200_000
    with pytest.raises(B.BundleError, match="more than the limit of 20,971,520"):
        B.install_bundle(path, user)
    _nothing_installed(user)


def test_too_many_members_are_refused(tmp_path, user):
    members = {f"l{i}.json": {} for i in range(B.MAX_MEMBERS + 1)}
    with pytest.raises(B.BundleError, match="more than the limit of 50"):
        B.install_bundle(_zip(tmp_path / "many.nplesson", members), user)


def test_lying_header_is_caught_while_reading(tmp_path, user):
    """The headers say 100 bytes; the README really inflates to 4 MB (limit 1 MB)."""
    path = _zip(tmp_path / "lie.nplesson", {"my_momentum.json": _renamed(), "README.md": "\0" * (4 << 20)})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("README.md")
    data[info.header_offset + 22:info.header_offset + 26] = (100).to_bytes(4, "little")  # local header
    at = data.find(b"README.md")
    while at != -1:
        if data[at - 46:at - 42] == b"PK\x01\x02":  # the central directory's entry
            data[at - 46 + 24:at - 46 + 28] = (100).to_bytes(4, "little")
        at = data.find(b"README.md", at + 1)
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert sum(i.file_size for i in zf.infolist()) < 1 << 20  # the headers lie: under the limit
    with pytest.raises(B.BundleError, match="damaged|more than its header"):
        B.read_bundle(path, limit=1 << 20)
    with pytest.raises(B.BundleError, match="damaged|more than its header"):
        B.install_bundle(path, user)
    _nothing_installed(user)


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.pop("title"), "'title' is missing"),
    (lambda d: d.update(group="cooking"), "'group' 'cooking' is not one of"),
    (lambda d: d["claims"][0].update(check="is_magic"), r"'claims\[0\].check' 'is_magic'"),
    (lambda d: d["claims"][0].update(a="nope"), r"'claims\[0\]'.*variant 'nope'"),
    (lambda d: d["steps"].append({"text": "go", "colour": "red"}), r"'steps\[2\]'.*unknown: colour"),
    (lambda d: d["design"]["chain"].append(["Warp", {}]), "'design' is not a usable design"),
    (lambda d: d["variants"]["momentum"].update(training={"warp": 9}), "'variants.momentum' cannot be applied"),
    (lambda d: d["variants"]["momentum"].update(training={"lr": -1}), "'variants.momentum' is not a usable design"),
    (lambda d: d.update(name="../../etc"), "'name'.*lower-case"),
])
def test_invalid_lesson_json_names_the_file_and_the_field(tmp_path, user, edit, field):
    d = _renamed()
    edit(d)
    path = _zip(tmp_path / "bad.nplesson", {"ok.json": _renamed("dropout", "ok"), "my_momentum.json": d})
    with pytest.raises(B.BundleError, match=field) as err:
        B.install_bundle(path, user)
    assert "my_momentum.json" in str(err.value)
    _nothing_installed(user)


def test_not_json_and_misnamed_members_are_named(tmp_path, user):
    with pytest.raises(B.BundleError, match="'my_momentum.json' is not valid JSON"):
        B.install_bundle(_zip(tmp_path / "j.nplesson", {"my_momentum.json": "{nope"}), user)
    with pytest.raises(B.BundleError, match="'deep.json' is not valid JSON"):
        B.install_bundle(_zip(tmp_path / "d.nplesson", {"deep.json": "[" * 200_000 + "]" * 200_000}), user)
    d = _renamed()
    d["design"]["chain"][0][1]["units"] = "many"
    with pytest.raises(B.BundleError, match="my_momentum.json: field 'design' is not a usable design"):
        B.install_bundle(_zip(tmp_path / "u.nplesson", {"my_momentum.json": d}), user)
    with pytest.raises(B.BundleError, match="rename it my_momentum.json"):
        B.install_bundle(_zip(tmp_path / "n.nplesson", {"other.json": _renamed()}), user)
    _nothing_installed(user)


def test_a_shipped_lesson_name_is_refused(tmp_path, user):
    path = _zip(tmp_path / "s.nplesson", {"my_dropout.json": _renamed("dropout", "my_dropout"),
                                          "momentum.json": _shipped("momentum")})
    with pytest.raises(B.BundleError, match="'momentum' has the name of a lesson that comes with"):
        B.install_bundle(path, user)
    _nothing_installed(user)


def test_damaged_and_garbage_files_give_a_clear_error(tmp_path, user):
    path = _zip(tmp_path / "t.nplesson", {"my_momentum.json": _renamed()})
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(B.BundleError, match=r"t\.nplesson .*(truncated|damaged)"):
        B.install_bundle(path, user)
    (tmp_path / "g.nplesson").write_bytes(b"not a zip at all")
    with pytest.raises(B.BundleError, match="not a readable lesson bundle"):
        B.install_bundle(tmp_path / "g.nplesson", user)
    _nothing_installed(user)


def test_encrypted_member_is_refused(tmp_path, user):
    path = _zip(tmp_path / "e.nplesson", {"my_momentum.json": _renamed()})
    data = bytearray(path.read_bytes())
    data[6] |= 1  # the local header's "encrypted" flag bit
    cd = data.find(b"PK\x01\x02")
    data[cd + 8] |= 1  # and the central directory's
    path.write_bytes(bytes(data))
    with pytest.raises(B.BundleError, match="'my_momentum.json' is encrypted"):
        B.install_bundle(path, user)


def test_a_broken_installed_file_is_left_out_not_fatal(tmp_path, user):
    os.makedirs(user)
    with open(os.path.join(user, "broken.json"), "w") as fh:
        fh.write("{")
    lessons, problems = LS.user_lessons(user)
    assert lessons == [] and "broken.json is not valid JSON" in problems[0]
    assert len(LS.all_lessons(user_folder=user)) == len(LS.all_lessons())


def test_archive_error_is_a_value_error():
    assert issubclass(B.BundleError, A.ArchiveError) and issubclass(A.ArchiveError, ValueError)


def test_a_nul_in_a_member_name_is_refused():
    """zipfile itself cuts a name at a NUL; the check still refuses one handed to it."""
    with pytest.raises(A.ArchiveError, match="outside"):
        A.check_member_name("x\x00.json")


def test_every_shipped_lesson_passes_the_bundle_checks(tmp_path):
    B.export_bundle(tmp_path / "all.nplesson", LS.all_lessons())
    lessons, _data, readme = B.read_bundle(tmp_path / "all.nplesson")
    assert sorted(les.name for les in lessons) == sorted(les.name for les in LS.all_lessons()) and readme == ""


def test_cli_installs_a_bundle_and_refuses_a_bad_one(tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    good = _zip(tmp_path / "g.nplesson", {"cli_momentum.json": _renamed(new="cli_momentum")})
    bad = _zip(tmp_path / "b.nplesson", {"../cli_momentum.json": _renamed(new="cli_momentum")})
    data = str(tmp_path / "data")

    def run(*args):
        return subprocess.run([sys.executable, "main.py", "lesson", *args], capture_output=True, text=True,
                              timeout=120, cwd=root)

    r = run("--install", str(bad), "--data", data)
    assert r.returncode == 1 and "outside the lessons folder" in r.stderr and not os.path.exists(data)
    r = run("--install", str(good), "--data", data)
    assert r.returncode == 0 and "cli_momentum" in r.stdout
    r = run("--list", "--data", data)
    assert "My Momentum" in r.stdout
