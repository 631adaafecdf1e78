"""The desktop side of an installed app: the Qt platform check's message and the Linux menu entry."""
import configparser
import os

from app import desktop


def test_a_missing_xcb_cursor_library_names_the_packages_to_install():
    def find(name):
        return None if name == "xcb-cursor" else f"lib{name}.so"

    message = desktop.qt_platform_problem(find=find, load=lambda so: False, platform="linux", env={})
    assert "libxcb-cursor.so.0" in message
    assert "sudo apt install libxcb-cursor0" in message and "sudo dnf install xcb-util-cursor" in message
    assert "xkbcommon" not in message, "only what is missing is named"


def test_no_message_when_the_libraries_are_there_or_qt_uses_another_plugin():
    nothing = lambda name: None  # noqa: E731
    assert desktop.qt_platform_problem(find=lambda n: f"lib{n}.so", platform="linux", env={}) == ""
    assert desktop.qt_platform_problem(find=nothing, load=lambda so: True, platform="linux", env={}) == ""
    assert desktop.qt_platform_problem(find=nothing, load=lambda so: False, platform="linux",
                                       env={"QT_QPA_PLATFORM": "offscreen"}) == ""
    assert desktop.qt_platform_problem(find=nothing, load=lambda so: False, platform="win32", env={}) == ""


def test_the_desktop_entry_starts_the_installed_command_with_its_icon(tmp_path):
    path = desktop.install_desktop_entry(str(tmp_path), command="/opt/my apps/bin/neural-playground")
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(path)
    e = entry["Desktop Entry"]
    assert e["Name"] == "Neural Playground" and e["Type"] == "Application"
    assert e["Exec"] == '"/opt/my apps/bin/neural-playground" %f'
    icon = tmp_path / "icons" / "hicolor" / "256x256" / "apps" / f"{e['Icon']}.png"
    assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.path.basename(path) == e["StartupWMClass"] + ".desktop"
