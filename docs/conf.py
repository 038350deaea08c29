"""Sphinx configuration of the pixelforest lesson website.

Build it with::

    pip install -e ".[docs]"
    PIXELFOREST_DATA_DIR=../shared/data sphinx-build -W --keep-going -b html docs docs/_build/html

Every code cell of the lessons is executed during the build (a failing cell
fails the build); the sample images come through ``pixelforest.datasets``
from ``PIXELFOREST_DATA_DIR``, so the build works offline.  The site loads
nothing from outside itself: no CDN, no web fonts, no MathJax.
"""

import os
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

# The notebook kernel runs in the lesson's folder and Sphinx reads this file
# from docs/, so a relative data folder (CI passes ../shared/data, relative to
# the repository root where sphinx-build is called) is made absolute here:
# relative to the caller's directory ($PWD) if it exists there, else to the
# repository root.
_data_dir = os.environ.get("PIXELFOREST_DATA_DIR")
if _data_dir and not os.path.isabs(_data_dir):
    _candidates = [Path(os.environ.get("PWD", HERE.parent)) / _data_dir, HERE.parent / _data_dir]
    _found = next((c for c in _candidates if c.is_dir()), _candidates[-1])
    os.environ["PIXELFOREST_DATA_DIR"] = str(_found.resolve())
# CI exports MPLBACKEND=Agg for the tests; the kernel needs the inline backend
# to put figures into the page (ipykernel keeps an existing MPLBACKEND).
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

import pixelforest  # noqa: E402  (after the environment is set)

project = "pixelforest"
author = "pixelforest developers"
copyright = "pixelforest developers; lesson text CC BY 4.0, sample data CC0"
release = pixelforest.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx_exercise",
    "sphinx_togglebutton",
    "pixelforest_docs",
]

exclude_patterns = ["_build", "_generated", "jupyter_execute", "**.ipynb_checkpoints", "Thumbs.db",
                    ".DS_Store"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"

# -- MyST and notebook execution --------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 240
# each page runs in a fresh temporary folder: the lesson writes its data/ folder
# there, never into docs/
nb_execution_in_temp = True
nb_merge_streams = True
# Markdown outputs (the comparison table) are parsed as MyST, which has tables
nb_render_markdown_format = "myst"
# No require.js / ipywidgets scripts from a CDN: the lesson has no widgets.
nb_ipywidgets_js = {}

# -- API reference -----------------------------------------------------------
autosummary_generate = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# intersphinx would fetch inventories from the network: keep it off-line.
intersphinx_mapping = {}
intersphinx_disabled_reftypes = ["*"]

# -- exercises ---------------------------------------------------------------
exercise_style = "solution_follow_exercise"
togglebutton_hint = "Click to show"
togglebutton_hint_hide = "Click to hide"

# -- repository link in the header ---------------------------------------------
# the project's own [project.urls] (pyproject.toml): one place for the address,
# read from the file, never fetched
_urls = tomllib.loads((HERE.parent / "pyproject.toml").read_text(encoding="utf-8"))[
    "project"].get("urls", {})
_repository_url = _urls.get("Repository") or _urls.get("Source") or _urls.get("Homepage")

# -- HTML --------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "pixelforest"
html_static_path = ["_static"]
html_css_files = ["pixelforest.css"]
html_favicon = "_static/favicon.svg"
html_logo = "_static/favicon.svg"
html_copy_source = True
html_last_updated_fmt = None
html_theme_options = {
    "use_download_button": True,
    "use_fullscreen_button": False,
    # a plain link to the repository (its icon is bundled with the theme)
    "use_repository_button": bool(_repository_url),
    "repository_url": _repository_url or "",
    "repository_branch": "main",
    "path_to_docs": "docs",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "home_page_in_toc": True,
    # nothing that calls out to the network (launch buttons, analytics, icons from a CDN)
    "launch_buttons": {},
    "icon_links": [],
}
html_show_sphinx = False
# an explicit mode, or pydata-sphinx-theme logs "Got invalid theme mode" as a console error
html_context = {"default_mode": "light"}
