"""The operator's command line: `flask cpo …`, `flask qr …` (codes, sticker sheets),
`flask worker`, `flask operator`.

Each command runs inside the app (Flask's CLI pushes an app context), so it reads the app's
configuration through current_app; create_app adds them with register_cli().
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

import passwords
from extensions import db

# Every command that changes something leaves an audit row (dashboard/audit.py, by
# "cli:<account>"); tests/integration/test_cli_audit.py holds each command to it.

if TYPE_CHECKING:
    from ocpi.models import OcpiLocation, Party

cpo = AppGroup("cpo", help="Connections to charge point operators (OCPI).")


def _identity(text: str, default_role: str) -> tuple[str, str, str]:
    from ocpi.credentials import parse_identity

    try:
        return parse_identity(text, default_role)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@cpo.command("connect")
@click.option("--versions-url", required=True, help="The CPO's OCPI versions URL.")
@click.option("--token", "token_a", required=True, help="Token A the CPO gave you.")
@click.option("--name", default=None, help="A name for this CPO in the dashboard.")
@click.option("--no-pull", is_flag=True, help="Do not import Locations and Tariffs now.")
@click.option("--for", "acting_for", multiple=True, metavar="CC*PID",
              help="For a hub: a CPO it may act for (repeat for each).")
def cpo_connect(versions_url: str, token_a: str, name: str | None, no_pull: bool,
                acting_for: tuple[str, ...]) -> None:
    """Register ScanCharge with a CPO or a hub (credentials handshake).

    The connection holds the CPO (or HUB) roles the peer declares, unless another
    connection already holds one; a hub acts only for the CPOs named with --for.
    """
    from ocpi.credentials import connect
    from ocpi.sync import pull
    from ocpi.transport import OcpiError

    try:
        cpos = [_identity(text, "CPO") for text in acting_for]
        party = connect(versions_url, token_a, name, acting_for=cpos)
    except OcpiError as exc:
        raise click.ClickException(
            f"could not connect (OCPI {exc.status_code}): {exc.message}"
        ) from exc
    click.echo(f"Connected to {party.name} ({party.country_code}/{party.party_id}), "
               f"OCPI {party.version}; granted "
               f"{', '.join(g.label for g in party.grants)}.")
    if party.is_hub and not party.cpo_identities:
        click.echo("This is a hub and may act for no CPO yet: connect again with --for.",
                   err=True)
    _audit("cpo_connect", party.name, f"{versions_url}; granted "
           f"{', '.join(g.label for g in party.grants) or 'nothing'}")
    if not no_pull:
        report = pull(party, full=True)
        click.echo(f"Imported {report.locations} locations and {report.tariffs} tariffs.")
        for problem in report.rejected:
            click.echo(f"  rejected: {problem}", err=True)
        _audit("cpo_sync", party.name, f"full: {report.locations} locations, "
               f"{report.tariffs} tariffs")


def _audit(action: str, target: str, detail: str = "") -> None:
    """The command's audit row, committed once its change is (dashboard.audit)."""
    from dashboard.audit import record_command

    record_command(action, target=target, detail=detail)
    db.session.commit()


@cpo.command("invite")
@click.option("--name", required=True, help="The CPO's name.")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE:CC*PID",
              help="An identity it may register as: CPO:SE*ABC, or HUB:DE*HUB for a hub "
                   "(repeat; a hub also needs --role CPO:… for each CPO it acts for).")
def cpo_invite(name: str, roles: tuple[str, ...]) -> None:
    """Issue a token A for a CPO or hub that will register with ScanCharge."""
    from ocpi.credentials import invite, our_versions_url
    from ocpi.transport import OcpiError

    try:
        party, token_a = invite(name, [_identity(text, "CPO") for text in roles])
    except OcpiError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{name} may register as {', '.join(g.label for g in party.grants)}.")
    # Never the token itself: the log is read by every admin.
    _audit("cpo_invite", name, f"may register as {', '.join(g.label for g in party.grants)}")
    click.echo(f"Give {name} these, over a secure channel:")
    click.echo(f"  versions URL: {our_versions_url()}")
    click.echo(f"  token A:      {token_a}")


@cpo.command("list")
def cpo_list() -> None:
    """Show every CPO connection."""
    from ocpi.models import Party

    parties = db.session.scalars(select(Party).order_by(Party.pk)).all()
    if not parties:
        click.echo("No CPO connections. Use 'cpo connect' or 'cpo invite'.")
    for p in parties:
        click.echo(f"{p.pk:>3}  {p.status:<12} {p.country_code or '--'}/{p.party_id or '---'}"
                   f"  OCPI {p.version or '-':<6} {p.name}  {p.versions_url or ''}")
        granted = ", ".join(g.label for g in p.grants) or "nothing (it can push nothing)"
        click.echo(f"     may act as: {granted}")


def find_party(ref: str) -> Party:
    from ocpi.models import Party

    party = None
    if ref.isdigit():
        party = db.session.get(Party, int(ref))
    if party is None:
        party = db.session.scalar(select(Party).where(Party.name == ref))
    if party is None:
        raise click.ClickException(f"no CPO connection {ref!r}: see 'cpo list'")
    return party


@cpo.command("refresh")
@click.argument("party")
def cpo_refresh(party: str) -> None:
    """Rotate the tokens with a CPO and fetch its endpoints again (credentials PUT)."""
    from ocpi.credentials import refresh
    from ocpi.transport import OcpiError

    found = find_party(party)
    try:
        refresh(found)
    except OcpiError as exc:
        raise click.ClickException(f"refresh failed (OCPI {exc.status_code}): "
                                   f"{exc.message}") from exc
    click.echo(f"{found.name}: new tokens exchanged, OCPI {found.version}, "
               f"{len(found.endpoints)} endpoints.")
    _audit("cpo_refresh", found.name, f"OCPI {found.version}")


@cpo.command("disconnect")
@click.argument("party")
def cpo_disconnect(party: str) -> None:
    """Unregister from a CPO (credentials DELETE) and stop accepting its requests."""
    from ocpi.credentials import disconnect
    from ocpi.transport import OcpiError

    found = find_party(party)
    told = "the CPO was told"
    try:
        disconnect(found)
    except OcpiError as exc:
        told = f"the CPO could not be told: {exc.message}"
        click.echo(f"The CPO could not be told ({exc.message}); disconnected on our side.",
                   err=True)
    click.echo(f"{found.name}: disconnected.")
    _audit("cpo_disconnect", found.name, told)


@cpo.command("sync")
@click.option("--full", is_flag=True, help="Import everything, not only what changed.")
def cpo_sync(full: bool) -> None:
    """Pull Locations and Tariffs from every connected CPO now."""
    from ocpi.models import Party
    from ocpi.sync import pull
    from ocpi.transport import OcpiError

    for party in db.session.scalars(select(Party).where(Party.status == "CONNECTED")).all():
        try:
            report = pull(party, full=full)
            click.echo(f"{party.name}: {report.locations} locations, "
                       f"{report.tariffs} tariffs")
        except OcpiError as exc:
            click.echo(f"{party.name}: failed: {exc.message}", err=True)
            continue
        _audit("cpo_sync", party.name, f"{'full' if full else 'changes'}: "
               f"{report.locations} locations, {report.tariffs} tariffs")


class _QrGroup(AppGroup):
    """`flask qr EVSE-ID` writes one code as before; `flask qr sheet …` a sticker sheet."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["code", *args]
        return super().parse_args(ctx, args)


qr = _QrGroup("qr", help="QR codes and sticker sheets for chargers.")
_allow_dev = click.option(
    "--allow-development-url", is_flag=True,
    help="Build codes from a PUBLIC_BASE_URL that only works on this machine (for tests).")


def _public_base_url(allow_development_url: bool) -> str:
    from stickers import development_base_url

    base: str = current_app.config["PUBLIC_BASE_URL"]
    if development_base_url(base) and not allow_development_url:
        raise click.ClickException(
            f"PUBLIC_BASE_URL is {base}, a development address: phones scanning these codes "
            "would not reach ScanCharge. Set PUBLIC_BASE_URL to the public https address, "
            "or pass --allow-development-url for a test print.")
    return base


def _unknown(evse_id: str) -> click.ClickException:
    return click.ClickException(
        f"no stored Location has the EVSE-ID {evse_id!r} (or another CPO claims it too): "
        "check it on /dashboard/chargers, run 'cpo sync', or pass --allow-unknown.")


@qr.command("code")
@click.argument("evse_id")
@click.option("--format", "fmt", type=click.Choice(["png", "svg"]), default="png")
@click.option("--out", type=click.Path(dir_okay=False), help="File (default EVSE-ID.fmt).")
@click.option("--allow-unknown", is_flag=True,
              help="Write a code for an EVSE-ID no stored Location holds.")
@_allow_dev
def qr_command(evse_id: str, fmt: str, out: str | None, allow_unknown: bool,
               allow_development_url: bool) -> None:
    """Write the QR code of a charger: its page URL, with the EVSE ID beneath."""
    import qrcodes
    from charging.connectors import find_evse

    base = _public_base_url(allow_development_url)
    if find_evse(evse_id) is None and not allow_unknown:
        raise _unknown(evse_id)
    url = qrcodes.charger_url(base, evse_id)
    data = qrcodes.qr_png(url, evse_id) if fmt == "png" else qrcodes.qr_svg(url, evse_id)
    path = Path(out or f"{evse_id.replace('*', '_')}.{fmt}")
    path.write_bytes(data)
    click.echo(f"{path}: {url}")
    # Printed stickers send drivers somewhere: which codes were made, and to where.
    _audit("qr_code", evse_id, f"{fmt} to {path}: {url}"
           + (" (unknown EVSE-ID allowed)" if allow_unknown else ""))


@qr.command("sheet")
@click.option("--location", "location_ref", metavar="ID",
              help="The site: its OCPI location id (or its number on the dashboard).")
@click.option("--evse", "evse_ids", multiple=True, metavar="EVSE-ID",
              help="Instead of a site: these chargers (repeat).")
@click.option("--size", type=click.Choice(["a4", "label"]), default="a4", show_default=True,
              help="a4: 8 stickers of 90 x 60 mm with cut marks; label: 62 x 100 mm each.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True,
              help="The PDF file to write.")
@click.option("--allow-unknown", is_flag=True, help="Print EVSE-IDs no stored Location holds.")
@_allow_dev
def qr_sheet(location_ref: str | None, evse_ids: tuple[str, ...], size: str, out: str,
             allow_unknown: bool, allow_development_url: bool) -> None:
    """Write a print-ready PDF of stickers for a site's chargers (or for --evse ones)."""
    import stickers

    if bool(location_ref) == bool(evse_ids):
        raise click.UsageError("name either --location or one or more --evse")
    _public_base_url(allow_development_url)
    config = current_app.config
    if location_ref:
        location = _find_location(location_ref)
        made = stickers.stickers_for_location(location, config)
        if not made:
            raise click.ClickException(
                f"location {location.location_id} has no charger with a page to print: no "
                "EVSE-IDs, all removed or claimed by another CPO too, or its CPO is not "
                "connected")
    else:
        try:
            made = stickers.stickers_for_evse_ids(evse_ids, config, allow_unknown=allow_unknown)
        except stickers.UnknownEvse as exc:
            raise _unknown(str(exc)) from exc
    Path(out).write_bytes(stickers.render_sheet(made, size))
    click.echo(f"{out}: {len(made)} stickers ({size})")
    for sticker in made:
        click.echo(f"  {sticker.evse_id}: {sticker.url}")
    _audit("sticker_sheet", location_ref or ", ".join(evse_ids),
           f"{len(made)} stickers ({size}) to {out}: "
           + ", ".join(sticker.evse_id for sticker in made))


def _find_location(ref: str) -> OcpiLocation:
    from ocpi.models import OcpiLocation

    rows = db.session.scalars(
        select(OcpiLocation).where(OcpiLocation.location_id == ref.upper())).all()
    if not rows and ref.isdigit():
        found = db.session.get(OcpiLocation, int(ref))
        rows = [found] if found is not None else []
    if not rows:
        raise click.ClickException(f"no stored location {ref!r}: see /dashboard/chargers")
    if len(rows) > 1:
        raise click.ClickException(
            f"{len(rows)} CPOs have a location {ref!r}: give its number instead ("
            + ", ".join(f"{r.pk} for {r.country_code}*{r.party_id}" for r in rows) + ")")
    return rows[0]


@click.command("worker")
@with_appcontext
@click.option("--periodic/--no-periodic", default=True,
              help="Also schedule the periodic tasks (sweep, pulls): in one worker only.")
def worker_command(periodic: bool) -> None:
    """Run a queue worker in the foreground (for QUEUE_URL=redis://...)."""
    from jobs import run_worker

    run_worker(current_app._get_current_object(), periodic=periodic)  # type: ignore[attr-defined]


@click.command("operator")
@with_appcontext
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help=f"At least {passwords.MIN_LENGTH} characters, not a common password, "
                   "not containing the e-mail's name.")
@click.option("--role", type=click.Choice(["admin", "support", "accounting"]), default=None,
              help="A new login's role (default admin); given, it changes an existing one's.")
def operator_command(email: str, password: str, role: str | None) -> None:
    """Create or reset an operator's dashboard login (a reset ends a lockout too)."""
    from dashboard.models import Operator, set_operator

    known = db.session.scalar(select(Operator).where(Operator.email == email.strip().lower()))
    was = f"reset (was {known.role})" if known is not None else "created"
    try:
        operator = set_operator(email, password, role=role)
    except passwords.PasswordPolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="'--password'") from exc
    click.echo(f"Operator {email} can sign in at /dashboard.")
    # A reset also ends a lockout and enables a disabled login: worth a line in the log.
    _audit("operator_set", operator.email, f"{was}; role {operator.role}")


def register_cli(app: Flask) -> None:
    from charging.cli import AUDIT_WRITER
    from dashboard.audit import record_command

    # For the commands of packages that know no dashboard (charging/cli.py).
    app.extensions[AUDIT_WRITER] = record_command
    app.cli.add_command(cpo)
    app.cli.add_command(qr)
    for command in (worker_command, operator_command):
        app.cli.add_command(command)
