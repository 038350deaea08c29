"""Sphinx helpers of the pixelforest website.

* ``pixelforest-cli`` directive: the CLI guide, rendered from
  :func:`pixelforest.cli.main.build_parser` (no command is run, nothing heavy
  is imported: the CLI modules only import the standard library at top level).
* API pages: one page per public module under ``api/generated/`` (ignored by
  git), written when the build starts, for the modules present in the source
  tree.
* Lesson notebooks: every page under ``lessons/`` is converted with jupytext
  to two plain Jupyter notebooks next to its HTML page: the learner's
  (``lessons/NAME.ipynb``, exercise skeletons, no solutions; the "Download the
  notebook" link) and the instructor's (``lessons/NAME-solutions.ipynb``, the
  reference solutions in place of the skeletons), with the MyST-only markup
  (exercise, solution and admonition directives, list tables, roles, raw
  HTML) rewritten as ordinary Markdown.
* ``pixelforest-screenshot`` directive: a figure of a screenshot made by
  ``tests/docs/test_napari_screenshots.py`` (``docs/_ext/napari_screenshots.py``)
  into ``docs/_generated/`` before the build.  A missing file is an error
  when ``PIXELFOREST_REQUIRE_SCREENSHOTS=1`` (``.ci/run``), and otherwise a
  note on the page saying how to make it.
"""

import importlib
import inspect
import os
import re
import shutil
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

#: Public modules documented in the API reference, in reading order.
API_MODULES = (
    "pixelforest",
    "pixelforest.io.images",
    "pixelforest.io.formats",
    "pixelforest.io.ngff",
    "pixelforest.datasets",
    "pixelforest.preprocess.normalize",
    "pixelforest.segment.unsupervised",
    "pixelforest.evaluate.metrics",
    "pixelforest.evaluate.figures",
    "pixelforest.features.spec",
    "pixelforest.features.compute",
    "pixelforest.classify.scribbles",
    "pixelforest.classify.classifier",
    "pixelforest.classify.pipeline",
    "pixelforest.segment.instances",
    "pixelforest.objects.measure",
    "pixelforest.objects.classifier",
    "pixelforest.io.model_file",
    "pixelforest.scale.tiled",
    "pixelforest.scale.batch",
    "pixelforest.scale.instances",
    "pixelforest.lesson.checkers",
    "pixelforest.errors",
)

#: Width of the rendered ``--help`` texts.
HELP_COLUMNS = 78


# -- CLI guide -----------------------------------------------------------------

def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


class PixelforestCLI(SphinxDirective):
    """Render ``pixelforest --help`` and each subcommand's help as sections."""

    has_content = False

    def run(self):
        from pixelforest.cli.main import build_parser

        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = str(HELP_COLUMNS)
        try:
            parser = build_parser()
            lines = [
                "The command-line tool",
                "---------------------",
                "",
                ".. code-block:: text",
                "   :class: cli-usage",
                "",
            ]
            lines += ["   " + line for line in parser.format_help().splitlines()]
            lines.append("")
            sub = _subparsers(parser)
            helps = {a.dest: a.help for a in (sub._choices_actions if sub else [])}
            for name, subparser in (sub.choices.items() if sub else []):
                title = f"``pixelforest {name}``"
                lines += [title, "-" * len(title), ""]
                summary = helps.get(name) or subparser.description or ""
                if summary:
                    lines += [summary.strip(), ""]
                lines += [".. code-block:: text", "   :class: cli-usage", ""]
                lines += ["   " + line for line in subparser.format_help().splitlines()]
                lines.append("")
        finally:
            if old is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = old
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="pixelforest-cli"),
                                 container)
        return container.children


# -- screenshots -----------------------------------------------------------------

#: Folder (under the docs source) of the files made before the build.
GENERATED = "_generated"

#: How to make the screenshots (shown on the page when they are missing).
SCREENSHOT_COMMAND = ('PIXELFOREST_REQUIRE_NAPARI=1 xvfb-run -a -s "-screen 0 1920x1080x24" '
                      "pytest tests/docs/test_napari_screenshots.py")


class PixelforestScreenshot(SphinxDirective):
    """A figure of ``docs/_generated/<file>``: ``:alt:`` required, the content is the caption.

    The image links to the full-size file (the page shows it scaled down).
    """

    required_arguments = 1
    has_content = True
    option_spec = {"alt": directives.unchanged_required,
                   "class": directives.class_option}

    def run(self):
        name = self.arguments[0]
        alt = " ".join(self.options.get("alt", "").split())
        if len(alt) < 40:
            raise self.error(f"pixelforest-screenshot {name}: give a real :alt: text "
                             "(what the picture shows, 40 characters or more)")
        path = Path(self.env.srcdir) / GENERATED / name
        caption_text = " ".join(line.strip() for line in self.content if line.strip())
        if not path.is_file():
            message = (f"{GENERATED}/{name} is missing: make the napari screenshots with "
                       f"{SCREENSHOT_COMMAND} before building the site.")
            if os.environ.get("PIXELFOREST_REQUIRE_SCREENSHOTS") == "1":
                raise self.error(message + " (PIXELFOREST_REQUIRE_SCREENSHOTS=1 makes this "
                                 "an error)")
            note = nodes.admonition(classes=["note", "missing-screenshot"])
            note += nodes.title(text="Screenshot not made yet")
            note += nodes.paragraph(text=f"This build has no {name} ({caption_text}). To "
                                         f"include it, run {SCREENSHOT_COMMAND} first.")
            return [note]
        self.env.note_dependency(str(path))
        uri = f"/{GENERATED}/{name}"
        # scale=100: shown at its own size (CSS shrinks it to the column), and Sphinx
        # links a scaled image to its full-size file (html_scaled_image_link)
        image = nodes.image(uri=uri, alt=alt, scale=100, candidates={"*": uri})
        figure = nodes.figure(classes=["screenshot"] + self.options.get("class", []))
        figure += image
        if caption_text:
            inline, messages = self.state.inline_text(caption_text, self.lineno)
            figure += nodes.caption(caption_text, "", *inline)
            figure += messages
        return [figure]


# -- API pages -----------------------------------------------------------------

def _module_exists(srcroot, name):
    parts = name.split(".")[1:]
    if not parts:
        return True
    base = srcroot.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def write_api_pages(app):
    """Write ``api/generated/<module>.rst`` for every public module present."""
    import pixelforest

    srcroot = Path(pixelforest.__file__).resolve().parent
    outdir = Path(app.srcdir) / "api" / "generated"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    for order, name in enumerate(API_MODULES):
        if not _module_exists(srcroot, name):
            continue  # not written yet; it appears here once it lands
        module = importlib.import_module(name)
        title = f"``{name}``"
        lines = [title, "=" * len(title), ""]
        if name == "pixelforest":
            # The package docstring is a summary table for ``help()``; the page
            # lists the lazily imported top-level names with their real homes.
            lines += ["``import pixelforest`` is fast: these top-level names are imported "
                      "lazily from the modules that define them.", "",
                      ".. autosummary::", ""]
            lazy = getattr(module, "_LAZY", {})
            lines += [f"   pixelforest.{mod}.{attr}" for attr, mod in sorted(lazy.items())
                      if _module_exists(srcroot, f"pixelforest.{mod}")]
            lines.append("")
            (outdir / f"{order:02d}-{name}.rst").write_text("\n".join(lines), encoding="utf-8")
            continue
        public = _public_names(module)
        summary = (inspect.getdoc(module) or "").strip().split("\n\n")[0]
        lines += [".. module:: " + name, "", summary, "", ".. autosummary::", ""]
        # constants (dicts, tuples) have no docstring of their own for the summary table
        lines += [f"   {attr}" for attr in public
                  if callable(getattr(module, attr)) or isinstance(getattr(module, attr), type)]
        lines.append("")
        for attr in public:
            obj = getattr(module, attr)
            kind = ("autoexception" if isinstance(obj, type) and issubclass(obj, BaseException)
                    else "autoclass" if isinstance(obj, type)
                    else "autofunction" if callable(obj) else "autodata")
            if kind == "autodata":
                # a dict or tuple has no docstring of its own (autodoc would show the
                # type's); document it by its "#:" comment where it is defined
                lines += [f".. py:data:: {attr}", "", "   " + _data_comment(module, attr), ""]
                continue
            lines += [f".. {kind}:: {attr}", ""]
        (outdir / f"{order:02d}-{name}.rst").write_text("\n".join(lines), encoding="utf-8")


def _data_comment(module, attr):
    """The ``#:`` comment above ``attr`` in ``module`` or the submodule defining it."""
    import sys

    from sphinx.pycode import ModuleAnalyzer

    obj = getattr(module, attr)
    names = [module.__name__] + sorted(
        name for name, mod in list(sys.modules.items())
        if name.startswith(module.__name__ + ".") and getattr(mod, attr, None) is obj)
    for name in names:
        try:
            docs = ModuleAnalyzer.for_module(name).find_attr_docs()
        except Exception:  # noqa: BLE001 - no source: try the next module
            continue
        comment = docs.get(("", attr))
        if comment:
            return " ".join(line.strip() for line in comment if line.strip())
    return f"A constant of :mod:`{module.__name__}`."


def _public_names(module):
    """``__all__``, or the public functions and classes defined in ``module``."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [attr for attr, obj in vars(module).items()
            if not attr.startswith("_") and getattr(obj, "__module__", None) == module.__name__
            and (inspect.isfunction(obj) or inspect.isclass(obj))]


def skip_member(app, what, name, obj, skip, options):
    """Hide scikit-learn's generated metadata-routing methods (``set_*_request``)."""
    if re.fullmatch(r"set_\w+_request", name):
        return True
    return None


# -- lesson notebooks ------------------------------------------------------------

_FENCE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w-]+)\}[ \t]*(?P<arg>[^\n]*)\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$\n?",
    re.MULTILINE | re.DOTALL,
)
_OPTION = re.compile(r"^:([\w-]+):[ \t]*(.*)$")
_ROLE = re.compile(r"\{(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|doc|ref|numref|term)\}"
                   r"`(?:[^`<]*<)?~?(?P<target>[^`>]+)>?`")
_RAW_HTML_LINE = re.compile(r"^<(?:a|div|p|span)\b.*?</(?:a|div|p|span)>[ \t]*$\n?",
                            re.MULTILINE)
_LABEL_LINE = re.compile(r"^\([\w:-]+\)=[ \t]*$\n?", re.MULTILINE)
_ADMONITIONS = {"note": "Note", "tip": "Tip", "important": "Important",
                "warning": "Warning", "caution": "Caution", "hint": "Hint",
                "seealso": "See also", "attention": "Attention"}


def _split_options(body):
    options, lines = {}, body.splitlines()
    while lines and _OPTION.match(lines[0]):
        key, value = _OPTION.match(lines[0]).groups()
        options[key] = value
        lines.pop(0)
    return options, "\n".join(lines).strip()


def _list_table(arg, body):
    """A MyST ``list-table`` as a Markdown table (the first row is the header)."""
    rows, row = [], None
    for line in body.splitlines():
        if line.startswith("* - "):
            row = [line[4:].strip()]
            rows.append(row)
        elif line.strip().startswith("- ") and row is not None:
            row.append(line.strip()[2:].strip())
        elif line.strip() and row is not None:
            row[-1] += " " + line.strip()
    if not rows:
        return body
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ([f"**{arg}**", ""] if arg else [])
    lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def _markdown_for_jupyter(text, exercises):
    """Rewrite MyST markup of one Markdown cell as plain (Jupyter) Markdown."""

    def directive(match):
        name, arg = match["name"], match["arg"].strip()
        options, body = _split_options(match["body"])
        body = _FENCE.sub(directive, body)
        if name in ("exercise", "exercise-start"):
            exercises.append(options.get("label", ""))
            heading = f"### Exercise {len(exercises)}" + (f": {arg}" if arg else "")
            return f"{heading}\n\n{body}\n" if body else f"{heading}\n"
        if name in ("solution", "solution-start"):
            note = (f"**Reference solution of exercise {len(exercises)}.** Learners have "
                    "the skeleton above in their notebook; the code cell below is one "
                    "correct answer and ends with the check.")
            return f"{note}\n\n{body}\n" if body else f"{note}\n"
        if name in ("exercise-end", "solution-end"):
            return ""
        if name == "list-table":
            return _list_table(arg, body)
        if name in _ADMONITIONS or name == "admonition":
            title = arg if name == "admonition" else _ADMONITIONS[name]
            quoted = "\n".join("> " + line if line else ">" for line in body.splitlines())
            return f"> **{title}**\n>\n{quoted}\n"
        if name in ("code-block", "code"):
            return f"```{arg}\n{body}\n```\n"
        if name in ("figure", "image"):
            return ""
        if name == "pixelforest-screenshot":  # the picture is on the web page: describe it
            front = re.match(r"\A---\n(?P<yaml>.*?)\n---\n", match["body"], flags=re.DOTALL)
            alt = options.get("alt", "")
            if front:
                import yaml

                alt = (yaml.safe_load(front["yaml"]) or {}).get("alt", alt)
            return f"> **Screenshot on the lesson's web page:** {' '.join(str(alt).split())}\n"
        return body + "\n" if body else ""

    text = _FENCE.sub(directive, text)
    text = _ROLE.sub(lambda m: f"`{m['target']}`", text)
    text = _RAW_HTML_LINE.sub("", text)
    text = _LABEL_LINE.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


#: The two notebooks written from each lesson page.
VARIANTS = {"learner": "{stem}.ipynb", "instructor": "{stem}-solutions.ipynb"}


def _split_solutions(text, in_solution):
    """Split a Markdown cell at ``solution-start``/``solution-end`` fences.

    Returns ``[(inside_a_solution, segment)]`` and the state after the cell.
    """
    segments, pos = [], 0
    for match in _FENCE.finditer(text):
        if match["name"] not in ("solution-start", "solution-end"):
            continue
        segments.append((in_solution, text[pos:match.start()]))
        if match["name"] == "solution-start":
            segments.append((True, match.group(0)))
            in_solution = True
        else:
            segments.append((True, match.group(0)))
            in_solution = False
        pos = match.end()
    segments.append((in_solution, text[pos:]))
    return segments, in_solution


def lesson_to_notebook(path, variant="learner"):
    """Return the lesson page ``path`` (MyST Markdown) as a plain Jupyter notebook.

    ``variant="learner"``: each exercise is its skeleton code cell (tagged
    ``skeleton`` in the page: a few lines, ``# your code here`` and the
    checker call); the reference solutions and their explanations are left
    out.  ``variant="instructor"``: the reference solutions (cells tagged
    ``solution``, with their explanations) instead of the skeletons.  Every
    other cell is the same in both, so a learner's notebook runs top to bottom
    whether or not the exercises are done.  Exercise cells carry
    ``metadata["pixelforest"] = {"exercise": label, "role": "skeleton" or
    "solution"}``.  MyST directives and roles become ordinary Markdown;
    outputs are empty.
    """
    import jupytext
    import nbformat

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    nb = jupytext.read(path, fmt="md:myst")
    exercises, cells = [], []
    in_solution, label = False, None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            segments, in_solution_after = _split_solutions(cell.source, in_solution)
            for match in _FENCE.finditer(cell.source):
                if match["name"] in ("exercise", "exercise-start"):
                    label = _split_options(match["body"])[0].get("label", "")
            kept = "".join(segment for inside, segment in segments
                           if variant == "instructor" or not inside)
            in_solution = in_solution_after
            source = _markdown_for_jupyter(kept, exercises)
            if source:
                cells.append(nbformat.v4.new_markdown_cell(source))
        elif cell.cell_type == "code":
            tags = set(cell.metadata.get("tags", []))
            role = "solution" if "solution" in tags else "skeleton" if "skeleton" in tags \
                else None
            if (role == "solution" and variant == "learner") or \
                    (role == "skeleton" and variant == "instructor"):
                continue
            metadata = {k: v for k, v in cell.metadata.items() if k != "mystnb"}
            if role:
                metadata["pixelforest"] = {"exercise": label, "role": role}
            cells.append(nbformat.v4.new_code_cell(cell.source, metadata=metadata))
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:03d}"
    out = nbformat.v4.new_notebook(cells=cells)
    out.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(out)
    return out


def write_lesson_notebooks(app, exception):
    """After a successful HTML build, write each lesson's two notebooks next to its page.

    ``lessons/NAME.ipynb`` is the learner's notebook (the "Download the
    notebook" link), ``lessons/NAME-solutions.ipynb`` the instructor's.
    """
    if exception is not None or app.builder.format != "html":
        return
    import nbformat

    from pixelforest._shared.atomic import atomic_output

    for source in sorted((Path(app.srcdir) / "lessons").glob("*.md")):
        for variant, pattern in VARIANTS.items():
            target = Path(app.outdir) / "lessons" / pattern.format(stem=source.stem)
            notebook = lesson_to_notebook(source, variant)
            with atomic_output(target) as tmp:
                nbformat.write(notebook, str(tmp))


def setup(app):
    app.add_directive("pixelforest-cli", PixelforestCLI)
    app.add_directive("pixelforest-screenshot", PixelforestScreenshot)
    app.connect("builder-inited", write_api_pages)
    app.connect("autodoc-skip-member", skip_member)
    app.connect("build-finished", write_lesson_notebooks)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
