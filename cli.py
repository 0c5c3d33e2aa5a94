"""The operator's command line: `flask cpo …`, `flask qr`, `flask worker`, `flask operator`.

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

if TYPE_CHECKING:
    from ocpi.models import Party

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
    if not no_pull:
        report = pull(party, full=True)
        click.echo(f"Imported {report.locations} locations and {report.tariffs} tariffs.")
        for problem in report.rejected:
            click.echo(f"  rejected: {problem}", err=True)


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


@cpo.command("disconnect")
@click.argument("party")
def cpo_disconnect(party: str) -> None:
    """Unregister from a CPO (credentials DELETE) and stop accepting its requests."""
    from ocpi.credentials import disconnect
    from ocpi.transport import OcpiError

    found = find_party(party)
    try:
        disconnect(found)
    except OcpiError as exc:
        click.echo(f"The CPO could not be told ({exc.message}); disconnected on our side.",
                   err=True)
    click.echo(f"{found.name}: disconnected.")


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


@click.command("qr")
@with_appcontext
@click.argument("evse_id")
@click.option("--format", "fmt", type=click.Choice(["png", "svg"]), default="png")
@click.option("--out", type=click.Path(dir_okay=False), help="File (default EVSE-ID.fmt).")
def qr_command(evse_id: str, fmt: str, out: str | None) -> None:
    """Write the QR sticker of a charger: its page URL, with the EVSE ID beneath."""
    import qrcodes

    url = qrcodes.charger_url(current_app.config["PUBLIC_BASE_URL"], evse_id)
    data = qrcodes.qr_png(url, evse_id) if fmt == "png" else qrcodes.qr_svg(url, evse_id)
    path = Path(out or f"{evse_id.replace('*', '_')}.{fmt}")
    path.write_bytes(data)
    click.echo(f"{path}: {url}")


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
    from dashboard.models import set_operator

    try:
        set_operator(email, password, role=role)
    except passwords.PasswordPolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="'--password'") from exc
    click.echo(f"Operator {email} can sign in at /dashboard.")


def register_cli(app: Flask) -> None:
    app.cli.add_command(cpo)
    for command in (qr_command, worker_command, operator_command):
        app.cli.add_command(command)
