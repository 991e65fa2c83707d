"""User-item interactions: MovieLens-100K (original u.data/u.item or RecBole atomic files) and a
generic JSONL format (user, item, rating, timestamp) with an item-text file (item, title, and any
other fields). Each item's fields are kept, so that ``render_items`` can make its text from a
template (``--item-template "{title} ({year}), {genres}"``): MovieLens gives title, year and
genres in either layout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from rec_edge.config import template_fields
from rec_edge.errors import DataError


@dataclass(frozen=True)
class Interaction:
    user: str
    item: str
    rating: float
    timestamp: float


@dataclass
class InteractionData:
    interactions: list[Interaction]
    titles: dict[str, str]  # item -> the text that names it in instructions
    source: str
    fields: dict[str, dict[str, str]] = field(default_factory=dict)  # item -> its item-file fields
    names: dict[str, str] = field(default_factory=dict)  # item -> title, where an item template
    # made ``titles`` other texts


def _lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding)
    except UnicodeDecodeError as error:
        bad_line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{bad_line}: not valid {encoding}; re-encode the file as UTF-8."
        ) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _interaction(
    path: Path, number: int, cells: list[str], problems: list[str]
) -> Interaction | None:
    if len(cells) < 4:
        problems.append(
            f"{path}:{number}: {len(cells)} fields, expected user, item, rating, timestamp"
        )
        return None
    try:
        return Interaction(cells[0].strip(), cells[1].strip(), float(cells[2]), float(cells[3]))
    except ValueError:
        problems.append(
            f"{path}:{number}: rating {cells[2]!r} or timestamp {cells[3]!r} is not a number"
        )
        return None


def _read_movielens(folder: Path) -> InteractionData:
    problems: list[str] = []
    rows = [
        _interaction(folder / "u.data", n, line.split("\t"), problems)
        for n, line in _lines(folder / "u.data")
    ]
    titles, fields = {}, {}
    genres = _movielens_genres(folder / "u.genre")
    for n, line in _lines(folder / "u.item", "latin-1"):  # the original file is Latin-1
        cells = line.split("|")
        if len(cells) < 2:
            problems.append(f"{folder / 'u.item'}:{n}: expected 'id|title|...'")
            continue
        titles[cells[0]] = cells[1].strip()
        date = cells[2].strip() if len(cells) > 2 else ""
        flags = cells[5:]
        fields[cells[0]] = {
            "title": titles[cells[0]],
            "release_date": date,
            "year": date[-4:] if date[-4:].isdigit() else "",
            "genres": ", ".join(g for g, f in zip(genres, flags, strict=False) if f.strip() == "1"),
        }
    return _finish(rows, titles, problems, str(folder), fields)


def _movielens_genres(path: Path) -> list[str]:
    """u.genre: 'name|index' lines; the genre flags of u.item follow that order."""
    if not path.is_file():
        return []
    pairs = [line.split("|") for _, line in _lines(path, "latin-1")]
    return [name for name, _ in sorted((p for p in pairs if len(p) == 2), key=lambda p: int(p[1]))]


def _read_atomic(inter: Path, item: Path) -> InteractionData:
    problems: list[str] = []
    lines = _lines(inter)
    _, header = next(lines, (0, ""))
    columns = [c.split(":")[0] for c in header.split("\t")]
    wanted = ["user_id", "item_id", "rating", "timestamp"]
    if not set(wanted) <= set(columns):
        raise DataError(f"{inter}:1: header {columns} lacks {sorted(set(wanted) - set(columns))}")
    index = [columns.index(c) for c in wanted]
    rows = []
    for n, line in lines:
        cells = line.split("\t")
        rows.append(
            _interaction(inter, n, [cells[i] if i < len(cells) else "" for i in index], problems)
        )
    titles = {}
    item_lines = _lines(item)
    _, header = next(item_lines, (0, ""))
    columns = [c.split(":")[0] for c in header.split("\t")]
    title_column = next((c for c in ("movie_title", "title", "name") if c in columns), None)
    if "item_id" not in columns or title_column is None:
        raise DataError(
            f"{item}:1: header {columns} needs item_id and a title column (movie_title, title or name)"
        )
    fields = {}
    aliases = {title_column: "title", "release_year": "year", "class": "genres"}
    for n, line in item_lines:
        cells = line.split("\t")
        if len(cells) <= columns.index(title_column):
            problems.append(f"{item}:{n}: missing {title_column}")
            continue
        item_id = cells[columns.index("item_id")]
        titles[item_id] = cells[columns.index(title_column)].strip()
        values = {c: v.strip() for c, v in zip(columns, cells, strict=False)}
        values.update((aliases[c], v) for c, v in list(values.items()) if c in aliases)
        if "class" in values:  # RecBole's genres: a space-separated token sequence
            values["genres"] = ", ".join(values["class"].split())
        fields[item_id] = values
    return _finish(rows, titles, problems, str(inter.parent), fields)


def _read_jsonl(path: Path, items: Path) -> InteractionData:
    problems: list[str] = []
    rows = []
    for n, line in _lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"{path}:{n}: malformed JSON ({error.msg})")
            continue
        missing = [k for k in ("user", "item", "rating", "timestamp") if k not in row]
        if missing:
            problems.append(f"{path}:{n}: missing fields {missing}")
            continue
        rows.append(
            _interaction(
                path, n, [str(row[k]) for k in ("user", "item", "rating", "timestamp")], problems
            )
        )
    titles, fields = {}, {}
    for n, line in _lines(items):
        try:
            row = json.loads(line)
            titles[str(row["item"])] = str(row["title"])
        except (json.JSONDecodeError, KeyError, TypeError):
            problems.append(f"{items}:{n}: expected a JSON object with 'item' and 'title'")
            continue
        fields[str(row["item"])] = {
            k: ", ".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in row.items()
        }
    return _finish(rows, titles, problems, str(path), fields)


def _finish(
    rows: list[Interaction | None],
    titles: dict[str, str],
    problems: list[str],
    source: str,
    fields: dict[str, dict[str, str]] | None = None,
) -> InteractionData:
    interactions = [r for r in rows if r is not None]
    untitled = sorted({r.item for r in interactions} - set(titles))
    if untitled:
        problems.append(f"{source}: {len(untitled)} items have no title (first: {untitled[:5]})")
    if problems:
        raise DataError(problems)
    if not interactions:
        raise DataError(f"{source}: no interactions")
    return InteractionData(interactions, titles, source, fields or {})


def render_items(data: InteractionData, template: str) -> InteractionData:
    """``data`` with each item's text made from its fields by ``template`` (``names`` keeps the
    titles). An item without a field the template names is an error naming both."""
    wanted = template_fields(template)
    problems, titles = [], {}
    for item, title in data.titles.items():
        values = data.fields.get(item, {"title": title})
        missing = [f for f in wanted if f not in values]
        if missing:
            problems.append(
                f"{data.source}: item {item!r} has no field {missing} for --item-template "
                f"{template!r} (its fields: {sorted(values)})"
            )
            if len(problems) >= 5:
                break
            continue
        titles[item] = " ".join(template.format_map(values).split())
    if problems:
        raise DataError(problems)
    return replace(data, titles=titles, names=dict(data.titles))


def read_interactions(
    path: str | Path, items: str | Path | None = None, item_template: str | None = None
) -> InteractionData:
    """A MovieLens folder (u.data + u.item, or RecBole's NAME.inter + NAME.item), or a JSONL file of
    interactions with ``items`` naming a JSONL file of item titles; with ``item_template``, each
    item's text rendered from its fields (``render_items``)."""
    data = _read(Path(path), items)
    return render_items(data, item_template) if item_template else data


def _read(path: Path, items: str | Path | None) -> InteractionData:
    if path.is_dir():
        if (path / "u.data").is_file():
            return _read_movielens(path)
        inter = sorted(path.glob("*.inter"))
        if inter:
            return _read_atomic(inter[0], inter[0].with_suffix(".item"))
        raise DataError(
            f"{path}: no u.data/u.item nor *.inter/*.item files (MovieLens or RecBole atomic layout)"
        )
    if items is None:
        raise DataError(
            f"{path}: a JSONL interactions file needs an items file with titles (--items FILE)"
        )
    return _read_jsonl(path, Path(items))
