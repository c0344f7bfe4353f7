"""Static HTML leaderboards and per-result reports from greenperf result files.

``render_site(paths, out_dir)`` loads every result file under ``paths`` once (bad files are
skipped with a one-line reason), groups them into one table per workload, phase and scenario,
and writes a self-contained site: sortable, filterable tables, inline-SVG plots, one page per
result with its runs, curves, energy and logs (drawn by the page's own script from the result
file embedded in it; see ``page.py``).
"""

from greenperf.leaderboard.load import Loaded, Skipped, find_result_files, load_one
from greenperf.leaderboard.site import RenderSummary, render_site, slugify

__all__ = ["Loaded", "RenderSummary", "Skipped", "find_result_files", "load_one", "render_site",
           "slugify"]
