"""Write the static site: ``index.html``, one page per result, the raw results and their logs.

Layout (all links relative, so the site works from ``file://`` and offline)::

    index.html
    r/<slug>.html          one page per result
    r/<slug>.json          the result file as read
    r/logs/<slug>--<log>   the MLLOG logs (the log's path parts joined by "--")

Results and logs are hard-linked into the site when it is on their file system and they are
world-readable (they are sealed by sha256 and never change), and copied otherwise. A second
render replaces every file it writes (never writes through a link). The logs share one
folder rather than one per result: on some file systems a ``mkdir`` costs as much as rendering
a page.

Every page is self-contained: inline CSS, inline script, inline SVG, and a Content Security
Policy that allows nothing external and only the page's own script (by hash), so that even an
escaping mistake could not run a script from a result file.

Each result file is read and parsed once, by the process that renders its page; the page
returns the plain rows the index needs. Pages are independent, so large sites are rendered by
a pool of worker processes; the index is rendered last, from the rows.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import multiprocessing
import os
import re
import shutil
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from greenperf import __version__
from greenperf.errors import GreenperfError
from greenperf.leaderboard import fragments, plots
from greenperf.leaderboard.load import (
    DEFAULT_MAX_FILE_BYTES,
    Loaded,
    Refused,
    Skipped,
    find_result_files,
    load_one,
    open_regular,
)
from greenperf.leaderboard.page import LogLink, result_context
from greenperf.leaderboard.records import Record
from greenperf.leaderboard.rows import (
    Entry,
    Group,
    build_groups,
    entries_for,
    ranking_columns_around_speedup,
    sustainability_columns,
)
from greenperf.results import ensure_writable_dir
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

PAGES = "r"
LOGS = "logs"
MAX_SLUG = 60
DEFAULT_MAX_LOG_BYTES = 256 * 1024 * 1024
# Below this many files a process pool costs more than it saves.
PARALLEL_THRESHOLD = 200
_UNSAFE = re.compile(r"[^a-z0-9._-]+")

@dataclass
class RenderSummary:
    index: Path
    pages: int
    tables: int
    skipped: list[Skipped]
    logs_copied: int = 0
    logs_not_copied: list[str] = field(default_factory=list)


def slugify(text: str, limit: int = MAX_SLUG) -> str:
    """A file-name-safe, lower-case form of ``text`` (no separators, no leading dot)."""
    slug = _UNSAFE.sub("-", text.lower()).strip("-.")
    slug = re.sub(r"-{2,}", "-", slug)[:limit].strip("-.")
    return slug or "result"


def page_ids(files: list[Path]) -> list[str]:
    """A short id per file from its path, unique within ``files``: the page's name suffix."""
    ids = [hashlib.sha256(str(f).encode("utf-8", "surrogateescape")).hexdigest()[:10]
           for f in files]
    seen: set[str] = set()
    for i, uid in enumerate(ids):
        if uid in seen:  # astronomically rare, but two pages must never share a name
            ids[i] = f"{uid}-{i}"
        seen.add(ids[i])
    return ids


def slug_for(record: Record, uid: str) -> str:
    name = f"{record.workload}-{record.scale}-{record.kind}-{record.system_name}"
    return f"{slugify(name)}-{uid}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("greenperf.leaderboard", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(tag=fragments.tag, badge_list=fragments.badge_list)
    return env


@lru_cache(maxsize=2)
def page_assets(kind: str = "index") -> dict[str, Markup | str]:
    """The inline script and stylesheet of an ``index`` or ``result`` page, and the CSP that
    admits exactly that script (the result page's JSON data blocks are never executed)."""
    env = environment()

    def source(name: str) -> str:
        return env.loader.get_source(env, name)[0]  # type: ignore[union-attr]

    # A result page draws its detail first, then makes its tables sortable like the index.
    script = source("site.js") if kind == "index" else source("result.js") + source("site.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    # Our own static files, not user data: safe to emit verbatim.
    return {"script": Markup(script), "style": Markup(source("site.css")), "csp": csp}


def _real_path_of(fd: int, fallback: Path) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc (not Linux)
        return os.path.realpath(fallback)


def _create(dest: Path) -> BinaryIO:
    """A new, empty file at ``dest``.

    Whatever was there (say, a hard link from an earlier render) is unlinked first: writing
    through it would change the source file it shares with.
    """
    dest.unlink(missing_ok=True)
    return open(dest, "xb")


def _readable_by_all(info: os.stat_result) -> bool:
    """A link shares the source's permissions: only a world-readable file may be linked, so
    that the published site stays readable (a private file is copied instead)."""
    return info.st_mode & 0o044 == 0o044


def place(dest: Path, source: str, identity: tuple[int, int], copy_from: BinaryIO | bytes,
          fresh: bool = False) -> None:
    """Put the file ``source`` (whose (st_dev, st_ino) is ``identity``) at ``dest``.

    Sealed results and logs never change, so a hard link is as good as a copy and costs a
    tenth of one; it is used when ``source`` is still the very file that was checked, lives
    on the same file system and is world-readable, otherwise the content is copied from
    ``copy_from``.
    ``fresh`` says ``dest``'s folder was created by this render, so nothing is there yet.
    """
    if not fresh:
        dest.unlink(missing_ok=True)
    try:
        os.link(source, dest)
        info = os.stat(dest)
        if (info.st_dev, info.st_ino) == identity and _readable_by_all(info):
            return
        dest.unlink()
    except OSError:  # another file system, or links not allowed here
        pass
    with _create(dest) as out:
        if isinstance(copy_from, bytes):
            out.write(copy_from)
        else:
            shutil.copyfileobj(copy_from, out)


@lru_cache(maxsize=4096)
def log_file_name(rel: str) -> str:
    """"logs/a/result_1.txt" -> "logs--a--result_1.txt"; the page's slug and "--" go in front.

    slugify never leaves "--" inside a part, so the name is unambiguous; and it always ends in
    ".txt", so that a stranger's "log" can never open as HTML."""
    name = "--".join(slugify(p, 120) for p in PurePosixPath(rel).parts) or "log"
    return name if name.endswith(".txt") else name + ".txt"


class LogCopier:
    """Puts the logs a result names into the site, only regular files inside its folder.

    ``fresh`` says ``logs_dir`` was created by this render, so no name in it is taken yet.
    """

    def __init__(self, logs_dir: Path, max_bytes: int, fresh: bool = False) -> None:
        self.logs_dir = logs_dir
        self.max_bytes = max_bytes
        self.fresh = fresh
        self.copied = 0
        self.refused: list[str] = []
        self._real_dirs: dict[str, str] = {}

    def _real_dir(self, folder: str) -> str:
        """``os.path.realpath(folder)``, in one ``lstat`` when its parent's is known: results
        sit side by side, so most parents are (a full realpath costs one per path part)."""
        real = self._real_dirs.get(folder)
        if real is None:
            parent, name = os.path.split(folder)
            if parent and parent != folder and name not in (".", "..") and not os.path.islink(
                    folder):
                real = os.path.join(self._real_dir(parent), name)
            else:
                real = os.path.realpath(folder)
            self._real_dirs[folder] = real
        return real

    def _link(self, source: str, inside: str, dest: Path, fresh: bool) -> bool:
        """The common case in two system calls: ``source`` is a regular file (not a link) in
        a folder that really lies inside ``inside``; hard-link it. False: not that case."""
        real_parent = self._real_dir(os.path.dirname(source))
        if real_parent != inside and not real_parent.startswith(inside + os.sep):
            return False
        if not fresh:
            dest.unlink(missing_ok=True)
        try:
            os.link(source, dest, follow_symlinks=False)
        except OSError:
            return False
        info = os.lstat(dest)
        if stat.S_ISREG(info.st_mode) and info.st_size <= self.max_bytes and (
                _readable_by_all(info)):
            return True
        dest.unlink()  # a symbolic link, FIFO, device or oversized file: look closer
        return False

    def _copy_one(self, folder: str, rel: str, dest: Path) -> str | None:
        """Put ``folder/rel`` at ``dest``; the reason when it may not be."""
        if not rel or "\x00" in rel or rel.startswith("/") or ".." in rel.split("/"):
            return "path is absolute or leaves the result's folder"
        base = self._real_dir(folder).rstrip(os.sep)
        source = os.path.join(folder, rel)
        if self._link(source, base, dest, self.fresh):
            return None
        try:
            handle, info = open_regular(Path(source), self.max_bytes)
        except Refused as exc:
            return str(exc)
        except OSError as exc:
            return "missing" if isinstance(exc, FileNotFoundError) else (
                f"cannot be read ({exc.strerror or exc})")
        with handle:
            real = _real_path_of(handle.fileno(), Path(source))
            if not real.startswith(base + os.sep):
                return "path leads outside the result's folder"
            place(dest, real, (info.st_dev, info.st_ino), handle, self.fresh)
        return None

    def copy(self, item: Loaded) -> dict[str, LogLink]:
        folder = os.path.dirname(item.source)
        names = [run.log_path for phase in item.record.phases for run in phase.runs]
        names += [f.log for f in item.record.findings]
        links: dict[str, LogLink] = {}
        used: set[str] = set()
        for rel in names:
            if rel in links:
                continue
            name = log_file_name(rel)
            target, n = name, 2
            while target in used:
                target, n = f"{n}-{name}", n + 1
            problem = self._copy_one(folder, rel, self.logs_dir / f"{item.slug}--{target}")
            if problem is None:
                used.add(target)
                self.copied += 1
                links[rel] = LogLink(rel, f"{self.logs_dir.name}/{item.slug}--{target}")
            else:
                links[rel] = LogLink(rel, None, problem)
                self.refused.append(f"{item.source}: log {rel!r}: {problem}")
        return links


@dataclass(frozen=True)
class _Job:
    """What every worker needs to know besides its files."""

    pages_dir: Path
    logs_dir: Path
    fresh: bool  # both folders were created by this render: no name in them is taken
    reference_system: str | None
    max_file_bytes: int
    max_log_bytes: int
    common: dict


@dataclass
class _Done:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    pages: int = 0
    logs_copied: int = 0
    logs_refused: list[str] = field(default_factory=list)
    # A GreenperfError does not survive pickling back from a worker, so it travels as data.
    fatal: tuple[str, str] | None = None


def _made(folder: Path) -> bool:
    """Create ``folder``; True when it did not exist before."""
    try:
        folder.mkdir()
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise GreenperfError(str(folder), f"cannot create ({exc.strerror or exc})") from exc


def _write(path: Path, text: str) -> None:
    try:
        with _create(path) as fh:
            fh.write(text.encode("utf-8"))
    except OSError as exc:
        raise GreenperfError(str(path), f"cannot write ({exc.strerror or exc})") from exc


def _render_files(job: _Job, files: list[tuple[Path, str]]) -> _Done:
    """Load, render and write the pages of ``files``; the rows they give the index."""
    done = _Done()
    copier = LogCopier(job.logs_dir, job.max_log_bytes, job.fresh)
    try:
        _render_into(done, copier, job, files)
    except GreenperfError as exc:
        done.fatal = (exc.where, exc.problem)
    done.logs_copied, done.logs_refused = copier.copied, copier.refused
    return done


def prerender_cells(entries: list[Entry]) -> None:
    """Render each row's index cells now, in the worker that built it, so that the index
    (rendered last, by one process) only has to put the rows in order."""
    for entry in entries:
        row, kind = entry.row, entry.key[0]
        head, _, tail = ranking_columns_around_speedup(kind)
        row.html = {"head": fragments.row_cells(row, head, "tta"),
                    "tail": fragments.row_cells(row, tail, "tta"),
                    "sustainability": fragments.row_cells(row, sustainability_columns(kind))}
        # The other cells now travel as HTML; the index's plots still read the energy label.
        row.cells = {"energy": row.cells["energy"]}


def _render_into(done: _Done, copier: LogCopier, job: _Job,
                 files: list[tuple[Path, str]]) -> None:
    template = environment().get_template("result.html")
    for path, uid in files:
        item = load_one(path, job.max_file_bytes)
        if isinstance(item, Skipped):
            done.skipped.append(item)
            continue
        if job.reference_system is not None:
            item.reference = item.record.system_name == job.reference_system
        item.slug = slug_for(item.record, uid)
        try:
            links = copier.copy(item)
            html = template.render(**job.common, **page_assets("result"),
                                   **result_context(item, links))
            entries = entries_for(item, f"{PAGES}/{item.slug}.html")
            prerender_cells(entries)
        except GreenperfError:
            raise
        except OSError as exc:
            raise GreenperfError(str(job.pages_dir), f"cannot write the site ({exc})") from exc
        except Exception as exc:  # a stranger's odd-but-valid file must not stop the site
            done.skipped.append(Skipped(path, f"could not be rendered ({type(exc).__name__}: "
                                              f"{exc})"))
            continue
        _write(job.pages_dir / f"{item.slug}.html", html)
        try:
            place(job.pages_dir / f"{item.slug}.json", str(item.source), item.identity, item.raw,
                  job.fresh)
        except OSError as exc:
            raise GreenperfError(str(job.pages_dir), f"cannot write ({exc.strerror or exc})") \
                from exc
        done.entries.extend(entries)
        done.pages += 1


def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _render_all(job: _Job, files: list[tuple[Path, str]], jobs: int) -> _Done:
    if jobs <= 1 or len(files) < PARALLEL_THRESHOLD:
        done = _render_files(job, files)
        if done.fatal:
            raise GreenperfError(*done.fatal)
        return done
    # Small chunks, so that no worker is left with a long last one while the others wait.
    size = max(16, min(64, len(files) // (jobs * 8) or 1))
    chunks = [files[i:i + size] for i in range(0, len(files), size)]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    total = _Done()
    with context.Pool(jobs) as pool:
        for part in pool.imap(functools.partial(_render_files, job), chunks):
            if part.fatal:
                raise GreenperfError(*part.fatal)
            total.entries.extend(part.entries)
            total.skipped.extend(part.skipped)
            total.pages += part.pages
            total.logs_copied += part.logs_copied
            total.logs_refused.extend(part.logs_refused)
        pool.close()
        pool.join()
    return total


def _table_bodies(group: Group) -> dict[str, Markup]:
    """The rows of a group's two tables, in rank order, from the cells the workers rendered."""
    speedup = ranking_columns_around_speedup(group.kind)[1]
    with_speedup = bool(group.reference_systems)
    ranking = []
    for rank, row in enumerate(group.rows, 1):
        middle = fragments.cell_td(row.cells[speedup.key], speedup) if with_speedup else ""
        ranking.append(f'<tr><td class="num" data-sort="{rank}">{rank}</td>{row.html["head"]}'
                       f'{middle}{row.html["tail"]}</tr>\n')
    sustainability = [f'<tr><td class="num" data-sort="{rank}">{rank}</td>'
                      f'{row.html["sustainability"]}</tr>\n'
                      for rank, row in enumerate(group.sustainability_rows, 1)]
    # Every piece is markup the workers built with escaping, or a number.
    return {"ranking": Markup("".join(ranking)), "sustainability": Markup("".join(sustainability))}


def _group_plots(group: Group) -> dict[str, Markup | None]:
    return {"pareto": plots.time_vs_energy(group) if group.kind == "training" else None,
            "curves": plots.accuracy_curves(group) if group.kind == "training" else None,
            "speedup": plots.speedups(group)}


def render_site(paths: Iterable[Path], out_dir: Path, reference_system: str | None = None,
                title: str = "greenperf leaderboard",
                max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
                jobs: int | None = None) -> RenderSummary:
    """Render the leaderboard of every result file under ``paths`` into ``out_dir``.

    ``reference_system`` names the system speed-ups are measured against (default: results
    under a ``reference_results`` folder); ``jobs`` worker processes render the pages
    (default: the usable CPUs).
    """
    out_dir = ensure_writable_dir(out_dir)
    files = find_result_files(paths, exclude=out_dir)
    pages_dir = out_dir / PAGES
    logs_dir = pages_dir / LOGS
    fresh = _made(pages_dir)
    fresh = _made(logs_dir) and fresh
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    common = {"generated": generated, "version": __version__, "site_title": title}
    job = _Job(pages_dir, logs_dir, fresh, reference_system, max_file_bytes, max_log_bytes, common)
    done = _render_all(job, list(zip(files, page_ids(files), strict=True)),
                       jobs or _default_jobs())
    groups = build_groups(done.entries)
    index = out_dir / "index.html"
    _write(index, environment().get_template("index.html").render(
        **common, **page_assets("index"),
        groups=[(g, _group_plots(g), _table_bodies(g)) for g in groups],
        skipped=done.skipped, results=done.pages))
    return RenderSummary(index, done.pages, len(groups), done.skipped, done.logs_copied,
                         done.logs_refused)
