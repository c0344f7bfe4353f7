"""``greenperf report``: a result's sustainability account, as a table or JSON.

The account is recomputed from the result with the settings given (``--region``, ``--prices``,
``--amortise``), so a user can look at another region's carbon without re-running. Settings
not given come from what the result recorded, then from its system description, then from
the defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from greenperf.account import (
    AccountSettings,
    DeviceUse,
    Price,
    build_account,
    device_rate,
    resolve_settings,
)
from greenperf.commands.output import emit_json, table
from greenperf.errors import UsageError
from greenperf.results import read_result

_SI = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
_SCALED_UNITS = {"J", "W", "gCO2e", "B"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="show a result's sustainability account")
    p.add_argument("result", type=Path, help="result JSON file")
    p.add_argument("--region", default=None,
                   help="grid region for carbon (ISO code such as FR, US, or WORLD, EU)")
    p.add_argument("--prices", type=Path, default=None, metavar="FILE",
                   help="TOML of prices overriding the defaults (format: harness/data/prices.toml)")
    p.add_argument("--amortise", type=int, default=None, metavar="K",
                   help="also show pre-training amortised over K fine-tunes (1, 10, 100 always)")
    p.add_argument("--json", action="store_true", help="the account as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.result.is_dir():
        raise UsageError(str(args.result), "is a folder; give one result file")
    doc = read_result(args.result)
    settings = resolve_settings(region=args.region, prices_file=args.prices,
                                amortise=args.amortise, doc=doc, where=str(args.result))
    account = build_account(doc, settings)
    if args.json:
        emit_json({"result": str(args.result), "workload": doc.get("workload"),
                   "scale": doc.get("scale"), "system": (doc.get("system") or {}).get("name"),
                   "account": account})
    else:
        print(render(doc, account, settings, str(args.result)))
    return 0


# --- rendering -----------------------------------------------------------------------------

def format_value(fig: dict[str, Any]) -> str:
    """A figure's value with a readable unit; '-' when there is none."""
    value, unit = fig["value"], fig["unit"]
    if value is None:
        return "-"
    if unit in _SCALED_UNITS:
        for factor, prefix in _SI:
            if abs(value) >= factor:
                return f"{value / factor:.4g} {prefix}{unit}"
    if unit in ("samples", "B") or (unit == "epochs" and float(value).is_integer()):
        return f"{value:,.0f} {unit}"
    return f"{value:.4g} {unit}"


def _row(name: str, fig: dict[str, Any]) -> list[str]:
    source = fig.get("reason") if fig["value"] is None else fig.get("source", "")
    label = fig["label"] + (f" ({fig['detail']})" if fig.get("detail") else "")
    return [name, format_value(fig), label, source or ""]


def _group_rows(prefix: str, group: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [_row(f"{prefix} {key.replace('_', ' ')}", fig) for key, fig in group.items()]


def _cell(fig: dict[str, Any]) -> str:
    return f"{format_value(fig)} {fig['label']}" if fig["value"] is not None else (
        f"- ({fig.get('reason', 'not available')})")


def render(doc: dict[str, Any], account: dict[str, Any], settings: AccountSettings,
           path: str) -> str:
    header = ["figure", "value", "label", "source / reason"]
    region = settings.region
    lines = [
        f"sustainability account: {path}",
        f"workload {doc.get('workload')} ({doc.get('scale')}, {doc.get('kind')}), "
        f"system {(doc.get('system') or {}).get('name')}",
        f"region: {settings.region_line()}: {region.name}, {region.gco2e_per_kwh:g} gCO2e/kWh "
        f"({region.year}, {region.source})",
        f"prices: {'; '.join(settings.prices.origins)}",
    ]
    devices = DeviceUse(**account["devices"])
    used: list[Price | None] = [settings.prices.energy, device_rate(settings.prices, devices).price]
    for price in used:
        if price is not None:
            lines.append(f"  {price.name}: {price.value:g} {price.currency} {price.per}, "
                         f"{price.label} ({price.source}; {price.date}; from {price.origin})")
    lines.append(f"devices: {devices.count} x {devices.model} ({devices.kind})")
    for phase in account["phases"]:
        lines += ["", f"phase {phase['name']}: {phase['runs']} run(s), "
                      f"{phase['successful_runs']} successful, score runs "
                      f"{phase['score_runs'] or '-'} ({phase['score_method']})"]
        rows = []
        for group in ("energy", "energy_components", "carbon", "money", "time", "data"):
            rows += _group_rows(group.replace("_components", " component"), phase[group])
        lines.append(table(rows, header))
    if len(account["phases"]) > 1:
        rows = []
        for group, figs in account["totals"].items():
            rows += _group_rows(group, figs)
        lines += ["", "all phases", table(rows, header)]
    for entry in account.get("inference") or []:
        rows = []
        for group in ("energy", "carbon", "money", "time", "data"):
            rows += _group_rows(group, entry[group])
        lines += ["", f"inference {entry['name']}", table(rows, header)]
    effort = account["human_effort"]
    lines += ["", "human effort (declared)" if effort["declared"] else
              "human effort: not declared",
              table([_row(k.replace("_", " "), v) for k, v in effort.items() if k != "declared"],
                    header)]
    amort = account["amortisation"]
    if amort is None:
        lines += ["", "pre-training amortisation: not applicable (no first phase named "
                      "pretrain* followed by fine-tuning phases)"]
    else:
        rows = [[r["task"], str(r["k"]), _cell(r["energy"]), _cell(r["carbon"]),
                 _cell(r["money"]), _cell(r["time"])] for r in amort["rows"]]
        lines += ["", f"pre-training amortisation: cost per downstream task when one "
                      f"{amort['pretrain_phase']} serves k fine-tunes (pretrain / k + finetune, "
                      "to target)",
                  table(rows, ["task", "k", "energy", "carbon", "money", "time"])]
    lines += ["", "notes:"] + [f"  - {note}" for note in account["notes"]]
    return "\n".join(lines)
