"""`flask tariffs price`: recompute a CDR's cost from a tariff, for operators and integrators.

    flask --app app tariffs price --cdr CDR.json [--tariff TARIFF.json] [--tz Europe/Stockholm]

Prints the breakdown as JSON (numbers exact, as OCPI writes them) with the CDR's own
total_cost and the difference beside it. Any problem with the input files ends with a
message naming the file and exit code 2.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from flask import Flask

from tariffs.model import OcpiObject, Tariff, TariffError, format_datetime, read
from tariffs.pricing import Cdr, price_cdr
from tariffs.v211 import convert_211

# cdr_location has no time_zone in OCPI 2.2.1; its country does tell the zone where the
# country has only one (ISO 3166 alpha-3 as the CDR carries it).
_COUNTRY_ZONES = {
    "AUT": "Europe/Vienna", "BEL": "Europe/Brussels", "BGR": "Europe/Sofia",
    "CHE": "Europe/Zurich", "CZE": "Europe/Prague", "DEU": "Europe/Berlin",
    "DNK": "Europe/Copenhagen", "EST": "Europe/Tallinn", "FIN": "Europe/Helsinki",
    "FRA": "Europe/Paris", "GBR": "Europe/London", "GRC": "Europe/Athens",
    "HRV": "Europe/Zagreb", "HUN": "Europe/Budapest", "IRL": "Europe/Dublin",
    "ISL": "Atlantic/Reykjavik", "ITA": "Europe/Rome", "LIE": "Europe/Vaduz",
    "LTU": "Europe/Vilnius", "LUX": "Europe/Luxembourg", "LVA": "Europe/Riga",
    "MLT": "Europe/Malta", "NLD": "Europe/Amsterdam", "NOR": "Europe/Oslo",
    "POL": "Europe/Warsaw", "ROU": "Europe/Bucharest", "SRB": "Europe/Belgrade",
    "SVK": "Europe/Bratislava", "SVN": "Europe/Ljubljana", "SWE": "Europe/Stockholm",
}


class _BadInput(Exception):
    pass


def _load(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _BadInput(f"{path}: cannot read the {what} file: {exc}") from exc
    try:
        # parse_float keeps every digit: 0.1 stays 0.1, never a binary float.
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise _BadInput(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} "
                        f"column {exc.colno}") from exc
    if isinstance(data, dict) and "data" in data and "status_code" in data:
        data = data["data"]  # a whole OCPI response pasted in: take its object
    if not isinstance(data, dict):
        raise _BadInput(f"{path}: expected one {what} JSON object, found "
                        f"{type(data).__name__}")
    return data


def _time_zone(cdr: dict[str, Any], given: str | None) -> str:
    if given:
        return given
    found = cdr.get("cdr_location")
    location: dict[str, Any] = found if isinstance(found, dict) else {}
    if isinstance(location.get("time_zone"), str):
        click.echo(f"note: time zone {location['time_zone']} from cdr_location.time_zone",
                   err=True)
        return location["time_zone"]
    country = str(location.get("country", "")).upper()
    if country in _COUNTRY_ZONES:
        zone = _COUNTRY_ZONES[country]
        click.echo(f"note: time zone {zone} from cdr_location.country {country}; "
                   "use --tz to choose another", err=True)
        return zone
    click.echo("warning: the CDR does not tell its time zone; local-time restrictions are "
               "read in UTC. Give the Location's time_zone with --tz.", err=True)
    return "UTC"


def _scalar(value: Any) -> str:
    # json.dumps would make a Decimal a float first, losing digits: its exact digits instead.
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON representation")
        return format(value, "f")
    if isinstance(value, datetime):
        return json.dumps(format_datetime(value))
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _pretty(value: Any, indent: int = 0) -> str:
    """Indented JSON whose numbers are exact Decimals."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        members = [f"{pad}{json.dumps(str(k))}: {_pretty(v, indent + 1)}"
                   for k, v in value.items()]
        return "{\n" + ",\n".join(members) + "\n" + "  " * indent + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = [f"{pad}{_pretty(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return _scalar(value)


def _valid(model: type[OcpiObject], data: dict[str, Any], path: Path, what: str) -> None:
    try:
        read(model, data)
    except TariffError as exc:
        detail = str(exc).split(": ", 1)[-1]
        raise _BadInput(f"{path}: not a valid OCPI 2.2.1 {what}: {detail}") from exc


def _price(tariff_path: Path | None, cdr_path: Path, tz: str | None) -> dict[str, Any]:
    cdr = _load(cdr_path, "CDR")
    _valid(Cdr, cdr, cdr_path, "CDR")
    tariffs = None
    if tariff_path is not None:
        tariff = _load(tariff_path, "tariff")
        if "country_code" not in tariff and "party_id" not in tariff:
            click.echo(f"note: {tariff_path} has no country_code/party_id: read as an OCPI "
                       "2.1.1 tariff", err=True)
            try:
                tariff = convert_211(tariff).to_json()
            except TariffError as exc:
                raise _BadInput(f"{tariff_path}: {exc}") from exc
        _valid(Tariff, tariff, tariff_path, "Tariff")
        tariffs = [tariff]
    elif not cdr.get("tariffs"):
        raise _BadInput(f"{cdr_path}: the CDR carries no tariffs; give one with --tariff")
    zone = _time_zone(cdr, tz)
    try:
        breakdown = price_cdr(cdr, time_zone=zone, tariffs=tariffs)
    except TariffError as exc:
        message = str(exc)
        if message.startswith("unknown time zone"):
            raise _BadInput(f"--tz: {message}") from exc
        # What remains is about a tariff's content (e.g. a restriction that is not a time).
        raise _BadInput(f"{tariff_path or cdr_path}: {message}") from exc
    out = breakdown.to_json()
    out["time_zone"] = zone
    given = cdr.get("total_cost")
    if isinstance(given, dict) and "excl_vat" in given:
        cdr_total = {k: Decimal(str(given[k])) for k in ("excl_vat", "incl_vat") if k in given}
        out["cdr_total_cost"] = cdr_total
        out["difference"] = {k: breakdown.total.to_json()[k] - v for k, v in cdr_total.items()}
    return out


@click.group("tariffs", help="Price sessions with OCPI tariffs.")
def tariffs_group() -> None:
    pass


@tariffs_group.command("price")
@click.option("--tariff", "tariff_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), default=None,
              help="Tariff JSON (OCPI 2.2.1, or 2.1.1). Default: the tariffs in the CDR, "
                   "chosen per charging period by tariff_id.")
@click.option("--cdr", "cdr_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CDR JSON (OCPI 2.2.1).")
@click.option("--tz", "tz", default=None,
              help="The Location's IANA time zone, e.g. Europe/Stockholm. Default: from the "
                   "CDR's country where it has one zone, else UTC (with a warning).")
@click.pass_context
def price_command(ctx: click.Context, tariff_path: Path | None, cdr_path: Path,
                  tz: str | None) -> None:
    """Recompute a CDR's cost and print the breakdown as JSON."""
    try:
        out = _price(tariff_path, cdr_path, tz)
    except _BadInput as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(2)
    click.echo(_pretty(out))


def register(app: Flask) -> None:
    """Add the `tariffs` command group to the app's CLI."""
    app.cli.add_command(tariffs_group)
