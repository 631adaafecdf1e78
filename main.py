"""Neural Playground entry point.

    python main.py [DESIGN.json] [--screenshot OUT.png]   start the desktop app
    python main.py train DESIGN.json [options]            train headlessly (see --help)
    python main.py lesson [--list | NAME [--check]]       list lessons, check one's claims headlessly
    python main.py lesson --install BUNDLE.nplesson       install a lesson bundle for the app
    python main.py export-project DESIGN.json OUTDIR      write the design as a plain PyTorch project

Installed with ``pip install .`` the same is the ``neural-playground`` command.
"""
import sys


def main(argv: list[str]) -> int:
    if argv and argv[0] == "train":
        from engine.cli import main as cli_main  # no Qt is imported on this path

        return cli_main(argv[1:])
    if argv and argv[0] == "export-project":
        from engine.cli import export_project_main  # no Qt either

        return export_project_main(argv[1:])
    if argv and argv[0] == "lesson":
        from engine.lesson_cli import main as lesson_main  # no Qt either (but --install may ask for it)

        return lesson_main(argv[1:], _app_data_folder)
    from app.gui import main as gui_main

    return gui_main(argv)


def _app_data_folder() -> str:
    """The folder the GUI keeps its files in (for ``lesson --install``): Qt knows where it is."""
    import os

    from PySide6.QtCore import QCoreApplication

    from app.runfiles import data_folder

    QCoreApplication.setOrganizationName(os.environ.get("NP_SETTINGS_ORG") or "NeuralPlayground")  # as app.gui does
    QCoreApplication.setApplicationName("Neural Playground")
    return data_folder()


def console() -> int:
    """The ``neural-playground`` command that ``pip install .`` makes."""
    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
