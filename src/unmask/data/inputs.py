"""Turn what the user points `unmask prepare` at into a list of inputs with labels.

Accepted forms:

* a folder: every (non-hidden) file below it. A file's label is the name of its nearest
  ancestor folder called `real`, `gan` or `edited`; its source is the folder just above that
  one (or the input folder's name when the label folder is directly inside it). So both
  `<root>/<source>/<label>/<files>` and `<root>/<label>/<files>` work, at any depth.
* a CSV with at least `path,label` (optional `source`, `group`, `method`); relative paths
  are relative to the CSV's folder.
* a list of files and folders.

With `unlabeled=True` (detect/eval on arbitrary files) labels are "" and nothing is rejected
for its label. Problems with single inputs (unknown label, missing path) become `Input`s with
a `problem` so that the batch records them and goes on; problems with the whole request
(missing input path, CSV without `path`/`label`) raise `UnmaskError`.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from unmask.errors import UnmaskError
from unmask.labels import DATA_LABELS, folder_label

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Input:
    path: Path  # absolute
    key: str  # stable, location-independent name (relative path under its root / CSV value)
    label: str
    source: str
    group: str = ""  # explicit group (CSV column); "" = derive
    method: str = ""
    order: int = 0
    problem: tuple[str, str] | None = None  # (reason, detail) when unusable before reading

    @property
    def uid(self) -> str:
        """`<safe stem>-<8 hex>`: stable id used for crop names and the work record."""
        h = hashlib.sha1(f"{self.source}|{self.key}".encode()).hexdigest()[:8]
        stem = safe_name(Path(self.key).stem)[:60] or "input"
        return f"{stem}-{h}"


def safe_name(text: str) -> str:
    """A file-name-safe version of `text` (for sources/labels used as folder names)."""
    return _SAFE.sub("_", text).strip("._") or "_"


def _label_source(rel_parts: tuple[str, ...], root_name: str) -> tuple[str, str]:
    """Nearest ancestor folder named like a label -> (label, source); ("", "") if none."""
    dirs = rel_parts[:-1]
    for i in range(len(dirs) - 1, -1, -1):
        label = folder_label(dirs[i])
        if label is not None:
            source = dirs[i - 1] if i >= 1 else root_name
            return label, source
    return "", ""


def walk_files(root: Path, skip: Path | None = None, sort: bool = True):
    """Every non-hidden file below `root` as (path, problem), sorted by path (else in walk
    order: each folder's files, then its subfolders, by name): folders that cannot be
    listed come out as entries with an `unreadable` problem instead of vanishing, and
    symlinked folders are followed once (a link back up the tree is not followed again)."""
    from unmask.data.imageio import printable

    seen: set[tuple[int, int]] = set()
    unlistable: list[tuple[Path, tuple[str, str]]] = []

    def onerror(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else root
        unlistable.append((where, ("unreadable", f"folder cannot be listed ({exc.strerror})")))

    out: list[tuple[Path, tuple[str, str] | None]] = []
    for dirpath, dirs, files in os.walk(root, onerror=onerror, followlinks=True):
        here = Path(dirpath)
        try:
            st = os.stat(here)
            if (st.st_dev, st.st_ino) in seen:  # a symlink loop: already walked
                dirs[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
        except OSError:
            pass
        keep = []
        for d in sorted(dirs):
            if d.startswith(".") or d == "__pycache__":
                continue
            if skip is not None and (here / d == skip or skip in (here / d).parents):
                continue
            keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            if name.startswith("."):
                continue
            p = here / name
            if skip is not None and (p == skip or skip in p.parents):
                continue
            problem = None
            if printable(name) != name or printable(dirpath) != dirpath:
                problem = ("bad_file_name", "the file name is not valid UTF-8")
            out.append((p, problem))
    out.extend(unlistable)
    return sorted(out, key=lambda x: Path(printable(x[0]))) if sort else out


def _from_folder(root: Path, unlabeled: bool, start: int, skip: Path | None) -> list[Input]:
    from unmask.data.imageio import file_problem, printable

    root = root.resolve()
    out: list[Input] = []
    for i, (p, problem) in enumerate(walk_files(root, skip)):
        rel = p.relative_to(root)
        key = printable(rel.as_posix())
        label, source = _label_source(rel.parts, root.name)
        source = printable(source or root.name)
        problem = problem or file_problem(p)
        if unlabeled:
            out.append(Input(p, key, "", source, order=start + i, problem=problem))
            continue
        if problem is None and not label:
            problem = (
                "unknown_label",
                f"not inside a folder named {'/'.join(DATA_LABELS)} (layout <root>/<source>/<label>/)",
            )
        out.append(Input(p, key, label, source, order=start + i, problem=problem))
    return out


def _from_csv(path: Path, unlabeled: bool, start: int) -> list[Input]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UnmaskError(f"{path}: not a UTF-8 text CSV") from None
    except OSError as exc:
        raise UnmaskError(f"{path}: cannot read ({exc.strerror})") from None
    reader = csv.DictReader(text.splitlines())
    try:
        fields = [f.strip() for f in (reader.fieldnames or [])]
        rows = list(reader)
    except csv.Error as exc:
        raise UnmaskError(f"{path}: not a readable CSV ({exc})") from None
    need = ["path"] if unlabeled else ["path", "label"]
    missing = [c for c in need if c not in fields]
    if missing:
        raise UnmaskError(
            f"{path}: CSV lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(fields) or 'nothing'}); expected at least path,label"
        )
    from unmask.data.imageio import file_problem

    base = path.resolve().parent
    out: list[Input] = []
    for i, raw in enumerate(rows):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        value = row.get("path", "")
        line = i + 2
        p = Path(value)
        p = p if p.is_absolute() else base / p
        key = value or f"line{line}"
        inferred_label, inferred_source = _label_source(Path(value).parts, path.stem)
        raw = "" if unlabeled else row.get("label", "")
        label = folder_label(raw) or raw.lower()
        source = row.get("source", "") or inferred_source or path.stem
        item = Input(
            path=p,
            key=key,
            label=label,
            source=source,
            group=row.get("group", ""),
            method=row.get("method", ""),
            order=start + i,
        )
        if not value:
            item.problem = ("missing", f"{path.name} line {line}: empty path")
        elif not unlabeled and label not in DATA_LABELS:
            item.problem = (
                "unknown_label",
                f"{path.name} line {line}: label {row.get('label', '')!r} is not one of "
                f"{', '.join(DATA_LABELS)}",
            )
        else:
            problem = file_problem(p) if "\x00" not in value else ("missing", "NUL in path")
            if problem is not None:
                item.problem = (problem[0], f"{path.name} line {line}: {problem[1]}")
        out.append(item)
    return out


def _single_file(p: Path, unlabeled: bool, order: int) -> Input:
    from unmask.data.imageio import file_problem, printable

    p = p.resolve()
    label, source = _label_source(p.parts, p.parent.name)
    source = printable(source or p.parent.name)
    problem = file_problem(p)
    if unlabeled:
        return Input(p, printable(p.name), "", source, order=order, problem=problem)
    if problem is None and not label:
        problem = (
            "unknown_label",
            f"its folder {p.parent.name!r} is not one of {', '.join(DATA_LABELS)}",
        )
    key = printable("/".join(p.parts[-3:]))
    return Input(p, key, label, source, order=order, problem=problem)


def ensure_writable_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create `path` (and parents) and prove it takes a file, or raise `UnmaskError` in one
    line: an existing file in the way, a read-only or missing parent, a full disk."""
    import tempfile

    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UnmaskError(f"{what} {p} exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=p, prefix=".unmask-probe-"):
            pass
    except OSError as exc:
        raise UnmaskError(f"{what} {p} is not writable ({exc.strerror or exc})") from None
    return p


def ensure_writable_file(path: str | Path, what: str = "output file") -> Path:
    """Check that `path` can be created: its folder exists and is writable, it is not a
    folder. Nothing is left behind."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UnmaskError(f"{what} {p} is a folder")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UnmaskError(f"{what} {p}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) and not p.exists():
        raise UnmaskError(f"{what} {p}: folder {parent} is not writable")
    return p


def is_csv(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".csv"


def collect_inputs(
    inputs, unlabeled: bool = False, out_dir: Path | None = None
) -> tuple[list[Input], list[Path]]:
    """Expand `inputs` (folder, CSV, file, or a list of those) -> (inputs, input roots).
    Raises UnmaskError for a missing path or an unusable CSV."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    items: list[Input] = []
    roots: list[Path] = []
    if not inputs:
        raise UnmaskError("no input given")
    for raw in inputs:
        p = Path(raw).expanduser()
        if not p.exists():
            raise UnmaskError(f"input not found: {p}")
        if p.is_dir():
            roots.append(p.resolve())
            items.extend(_from_folder(p, unlabeled, len(items), out_dir))
        elif is_csv(p):
            roots.append(p.resolve().parent)
            items.extend(_from_csv(p, unlabeled, len(items)))
        else:  # a file, or a FIFO/device named directly: recorded with its reason
            roots.append(p.resolve().parent)
            items.append(_single_file(p, unlabeled, len(items)))
    # The same file listed twice (imgs/a.jpg, ./imgs/a.jpg, its absolute path, a symlink)
    # keeps its first listing: deduplicated on the resolved path, the rest are `duplicate`.
    first: dict[str, Input] = {}
    seen_keys: set[tuple[str, str]] = set()
    unique = []
    for it in items:
        try:
            real = os.path.realpath(it.path)
        except (OSError, ValueError):
            real = str(it.path)
        k = (it.source, it.key)
        if it.problem is None and real in first:
            was = first[real]
            it.problem = ("duplicate", f"same file as {was.key!r} (listed more than once)")
        elif k in seen_keys:
            it.problem = it.problem or ("duplicate", "listed more than once")
        if k in seen_keys or (it.problem and it.problem[0] == "duplicate"):
            it.key = f"{it.key}#dup{it.order}"
        if it.problem is None:
            first.setdefault(real, it)
        seen_keys.add(k)
        unique.append(it)
    for i, it in enumerate(unique):
        it.order = i
    return unique, roots
