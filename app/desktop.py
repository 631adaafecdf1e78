"""The app as the desktop knows it: its icon, its Linux menu entry, and a clear word when Qt's
platform plugin cannot load. No Qt is imported here: these run before QApplication exists.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import sys

from assets import ICON, ROOT

APP_ID = "neural-playground"  # the .desktop file's name, the icon's name and QGuiApplication.desktopFileName
DESKTOP_TEMPLATE = os.path.join(ROOT, "neural-playground.desktop")

# libraries Qt 6's xcb platform plugin loads, and the packages that hold them (Debian/Ubuntu, Fedora)
XCB_LIBRARIES = (
    ("xcb-cursor", "libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    ("xkbcommon-x11", "libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    ("xcb-icccm", "libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    ("xcb-keysyms", "libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    ("xcb-image", "libxcb-image.so.0", "libxcb-image0", "xcb-util-image"),
    ("xcb-render-util", "libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
)


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def missing_qt_libraries(find=ctypes.util.find_library, load=_loadable) -> list[tuple[str, str, str]]:
    """(library, apt package, dnf package) of each library the xcb plugin needs that is not installed."""
    return [(so, apt, dnf) for name, so, apt, dnf in XCB_LIBRARIES if find(name) is None and not load(so)]


def qt_platform_problem(find=ctypes.util.find_library, load=_loadable, platform: str | None = None,
                        env: dict | None = None) -> str:
    """A message naming the packages to install when Qt's X11 plugin would abort; "" when all is well
    (or when another platform plugin - wayland, offscreen - was chosen, or not on Linux)."""
    env = os.environ if env is None else env
    if not (platform or sys.platform).startswith("linux") or env.get("QT_QPA_PLATFORM", "xcb") not in ("", "xcb"):
        return ""
    missing = missing_qt_libraries(find, load)
    if not missing:
        return ""
    return ("Neural Playground cannot open its window: Qt's X11 platform plugin needs "
            f"{', '.join(so for so, _, _ in missing)}, which this system lacks. Install it with\n"
            f"    sudo apt install {' '.join(apt for _, apt, _ in missing)}      (Debian, Ubuntu)\n"
            f"    sudo dnf install {' '.join(dnf for _, _, dnf in missing)}      (Fedora)\n"
            "then start it again. (On Wayland, QT_QPA_PLATFORM=wayland uses the Wayland plugin instead.)")


def install_desktop_entry(data_home: str | None = None, command: str | None = None) -> str:
    """Put Neural Playground in the Linux desktop's application menu (the freedesktop.org way):
    writes <data_home>/applications/neural-playground.desktop and the icon; returns the entry's path."""
    data_home = data_home or os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    command = command or shutil.which(APP_ID) or os.path.abspath(sys.argv[0])
    icons = os.path.join(data_home, "icons", "hicolor", "256x256", "apps")
    apps = os.path.join(data_home, "applications")
    os.makedirs(icons, exist_ok=True)
    os.makedirs(apps, exist_ok=True)
    shutil.copyfile(ICON, os.path.join(icons, APP_ID + ".png"))
    with open(DESKTOP_TEMPLATE, encoding="utf-8") as fh:
        # the full path: a pipx or venv install is not on the PATH a desktop session starts programs with
        text = fh.read().replace(f"Exec={APP_ID} ", f"Exec={_quoted(command)} ")
    target = os.path.join(apps, APP_ID + ".desktop")
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(text)
    return target


def _quoted(path: str) -> str:
    """A path as the Exec key wants it: quoted when it holds spaces (desktop entry spec)."""
    return f'"{path}"' if any(c in path for c in ' \t"\'\\') else path
