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
import re
from dataclasses import dataclass
from pathlib import Path

from unmask.errors import UnmaskError
from unmask.labels import LABELS

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


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in rel.parts)


def _label_source(rel_parts: tuple[str, ...], root_name: str) -> tuple[str, str]:
    """Nearest ancestor folder named like a label -> (label, source); ("", "") if none."""
    dirs = rel_parts[:-1]
    for i in range(len(dirs) - 1, -1, -1):
        if dirs[i].lower() in LABELS:
            source = dirs[i - 1] if i >= 1 else root_name
            return dirs[i].lower(), source
    return "", ""


def _from_folder(root: Path, unlabeled: bool, start: int, skip: Path | None) -> list[Input]:
    root = root.resolve()
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if _is_hidden(rel):
            continue
        if skip is not None and (p == skip or skip in p.parents):
            continue
        if p.is_file():
            files.append((p, rel))
    out: list[Input] = []
    for i, (p, rel) in enumerate(files):
        key = rel.as_posix()
        label, source = _label_source(rel.parts, root.name)
        if unlabeled:
            out.append(Input(p, key, "", source or root.name, order=start + i))
            continue
        problem = None
        if not label:
            problem = (
                "unknown_label",
                f"not inside a folder named {'/'.join(LABELS)} (layout <root>/<source>/<label>/)",
            )
        out.append(Input(p, key, label, source or root.name, order=start + i, problem=problem))
    return out


def _from_csv(path: Path, unlabeled: bool, start: int) -> list[Input]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UnmaskError(f"{path}: not a UTF-8 text CSV") from None
    except OSError as exc:
        raise UnmaskError(f"{path}: cannot read ({exc.strerror})") from None
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip() for f in (reader.fieldnames or [])]
    need = ["path"] if unlabeled else ["path", "label"]
    missing = [c for c in need if c not in fields]
    if missing:
        raise UnmaskError(
            f"{path}: CSV lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(fields) or 'nothing'}); expected at least path,label"
        )
    base = path.resolve().parent
    out: list[Input] = []
    for i, raw in enumerate(reader):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        value = row.get("path", "")
        line = i + 2
        p = Path(value)
        p = p if p.is_absolute() else base / p
        key = value or f"line{line}"
        inferred_label, inferred_source = _label_source(Path(value).parts, path.stem)
        label = "" if unlabeled else row.get("label", "").lower()
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
        elif not unlabeled and label not in LABELS:
            item.problem = (
                "unknown_label",
                f"{path.name} line {line}: label {row.get('label', '')!r} is not one of "
                f"{', '.join(LABELS)}",
            )
        elif not p.exists():
            item.problem = ("missing", f"{path.name} line {line}: no such file")
        out.append(item)
    return out


def _single_file(p: Path, unlabeled: bool, order: int) -> Input:
    p = p.resolve()
    label, source = _label_source(p.parts, p.parent.name)
    if unlabeled:
        return Input(p, p.name, "", source or p.parent.name, order=order)
    problem = None
    if not label:
        problem = (
            "unknown_label",
            f"its folder {p.parent.name!r} is not one of {', '.join(LABELS)}",
        )
    key = "/".join(p.parts[-3:])
    return Input(p, key, label, source or p.parent.name, order=order, problem=problem)


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
        elif p.is_file():
            roots.append(p.resolve().parent)
            items.append(_single_file(p, unlabeled, len(items)))
        else:
            raise UnmaskError(f"input is neither a file nor a folder: {p}")
    # the same file listed twice keeps its first listing
    seen: set[tuple[str, str]] = set()
    unique = []
    for it in items:
        k = (it.source, it.key)
        if k in seen:
            it.problem = it.problem or ("duplicate", "listed more than once")
            it.key = f"{it.key}#dup{it.order}"
        seen.add(k)
        unique.append(it)
    for i, it in enumerate(unique):
        it.order = i
    return unique, roots
