"""JupyterLab as the workbook runs it: `jupyter lab --config=jupyter/jupyter_lab_config.py` (what `make lab` runs).

These are the project's settings, not the learner's: they apply only to a JupyterLab started with this file, and
anything the learner chooses in JupyterLab's own settings still wins over them.

- The file browser shows `notebooks/`, and JupyterLab opens on `00_start_here.ipynb`.
- `lab-settings/overrides.json` changes two defaults: no "Would you like to get notified about official Jupyter
  news?" prompt, and no check for JupyterLab updates (a workshop room needs neither, and both call the internet).

Paths are relative to this file, so JupyterLab may be started from any folder.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent

c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file

c.ServerApp.root_dir = str(HERE.parent / "notebooks")
c.LabApp.default_url = "/lab/tree/00_start_here.ipynb"
# JupyterLab reads overrides.json from its application settings folder; this one holds only the project's.
c.LabApp.app_settings_dir = str(HERE / "lab-settings")
