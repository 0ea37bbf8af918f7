"""Sphinx configuration of the course website: `make site` writes it to _build/site/.

The source directory is the repository root, so the pages are the files learners read: the
README (landing page), notebooks/ with their outputs, exercises/ (blank, not executed), docs/,
and an API reference from the docstrings (site/api.md). The order is in site/_toc.yml.

Lessons are executed by myst-nb through jupyter-cache: once, then re-run only when the notebook
or the tlcourse package changes; a lesson that raises fails the build (as nbval would).
"""

import hashlib
import os
import pkgutil
import shutil
import sys
from importlib import metadata
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # autodoc imports tlcourse from this checkout

project = "tlcourse: transfer learning in PyTorch"
author = "the tlcourse authors"
copyright = "the tlcourse authors, MIT licence"  # noqa: A001 (Sphinx's name)

extensions = [
    "myst_nb",  # Markdown and notebooks (with their outputs)
    "sphinx_external_toc",  # site/_toc.yml
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # Google-style docstrings (STYLE.md)
]

# Only the course's pages: every other top-level folder of the repository is not a page.
PAGES = {"README.md", "notebooks", "exercises", "docs", "site", "solutions"}
exclude_patterns = sorted(p.name for p in ROOT.iterdir() if p.name not in PAGES)
exclude_patterns += ["solutions/[0-9]*", "**/.ipynb_checkpoints"]
external_toc_path = "site/_toc.yml"
external_toc_exclude_missing = True  # notebooks/README.md etc. are not pages


# --- notebooks -----------------------------------------------------------------------------
# jupyter-cache keys an execution by the notebook's code cells. The cache folder's name adds what
# else the lessons depend on: the tlcourse package, pyproject.toml, the installed packages, the
# device the lessons run on and the X-ray folder of lesson 07; a change there re-runs them all.
def _environment_digest() -> str:
    import tlcourse

    digest = hashlib.sha256()
    files = [ROOT / "pyproject.toml", *sorted((ROOT / "tlcourse").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    packages = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    settings = [f"device={tlcourse.get_device()}", os.environ.get("TLCOURSE_XRAY_DIR", "")]
    digest.update("\n".join(packages + settings).encode())
    return digest.hexdigest()[:16]


CACHE_ROOT = ROOT / "_build" / "jupyter_cache"
nb_execution_cache_path = str(CACHE_ROOT / _environment_digest())
# Keep the caches of the 3 most recent versions (switching branches back and forth stays cheap).
_older = sorted(CACHE_ROOT.glob("*/"), key=lambda p: p.stat().st_mtime, reverse=True)[3:]
for stale in _older:
    if str(stale) != nb_execution_cache_path:
        shutil.rmtree(stale, ignore_errors=True)

nb_execution_mode = "cache"
nb_execution_excludepatterns = ["exercises/*"]  # blank exercises raise NotImplementedError
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 1200  # per cell, against hangs; a lesson takes <= 60 s in all on 2 cores
nb_kernel_rgx_aliases = {".*": "python3"}  # the kernel of the Python running Sphinx (the venv)
nb_merge_streams = True  # one block of printed text per cell, as in JupyterLab
# tl.fit's progress bars are ipywidgets: live in JupyterLab, nothing to show on a static page.
# Without this, pages with one would load the widget JavaScript from a CDN (offline: errors).
nb_ipywidgets_js = {}

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # README links such as (#windows) point at headings

# --- API reference: one section per module, generated, so a new module cannot be missed ---------
# Docstrings are read as reStructuredText: a stray `*` in one (e.g. "{..., **extra}") is a
# docutils warning, shown as plain text (PlainAsterisks below), so those do not fail the -W
# build; broken links, missing images and lessons that raise still do.
suppress_warnings = ["docutils"]
default_role = "literal"  # `name` in a docstring is code, as in the Markdown pages
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False


def api_modules() -> list[str]:
    import tlcourse

    names = [
        f"tlcourse.{m.name}"
        for m in pkgutil.iter_modules(tlcourse.__path__)
        if not m.name.startswith("_")
    ]
    return sorted(names)


def _append_api(app, docname: str, source: list[str]) -> None:
    if docname != "site/api":
        return
    blocks = [
        f"\n## `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n   :members:\n```\n"
        for name in api_modules()
    ]
    source[0] += "".join(blocks)


class PlainAsterisks(SphinxTransform):
    """A `*` in a docstring that is not markup ("{**extra}", "*.png") stays plain text.

    Docstrings are written to be read in `help()`; reStructuredText would turn such a `*` into
    a link to a warning that is not on the page (a broken link on the API page).
    """

    default_priority = 999

    def apply(self, **kwargs) -> None:
        for node in list(self.document.findall(nodes.problematic)):
            node.parent.replace(node, nodes.Text(node.astext()))


def setup(app):
    app.connect("source-read", _append_api)
    app.add_transform(PlainAsterisks)


# --- HTML ------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "tlcourse"
html_theme_options = {
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": True,  # each lesson as .ipynb
    "home_page_in_toc": True,
}
html_context = {"default_mode": "light"}  # unset, the theme logs a console error on every page
html_show_search_summary = False  # snippets fetch each page: blocked when opened from disk
html_sourcelink_suffix = ""  # the download button gives the lesson's .ipynb as it is in git
