"""``packline broker``: the site's Mosquitto configuration (docs/broker.md)."""

from __future__ import annotations

import socket
from pathlib import Path

import typer

from packline.commands import command_group
from sync.errors import UserError

__all__ = ["app"]

app = command_group(
    help="Write the MQTT broker's configuration: one credential per client, least privilege."
)


@app.command()
def config(
    site: str = typer.Option(..., "--site", help="The warehouse: part of every topic."),
    stations: str = typer.Option(
        ..., "--stations", help="Station names, comma-separated (each its own client)."
    ),
    supervisors: str | None = typer.Option(
        None, "--supervisors", help="Supervisor names, comma-separated (alerts only)."
    ),
    out: Path = typer.Option(..., "--out", help="Folder to write (kept passwords live here)."),
    host: str | None = typer.Option(
        None, "--host", help="Name clients reach the broker by [default: this machine's name]."
    ),
    port: int | None = typer.Option(
        None, "--port", help="Port of the broker [default: 8883 with TLS, else 1883]."
    ),
    bind: str | None = typer.Option(
        None, "--bind", help="Address the broker listens on [default: every address]."
    ),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Broker certificate (PEM)."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="Its private key (PEM)."),
    tls_ca: Path | None = typer.Option(
        None, "--tls-ca", help="CA clients must trust (copied beside their URLs)."
    ),
    rotate: list[str] | None = typer.Option(
        None, "--rotate", help="Give this client a new password (repeatable)."
    ),
    user: str | None = typer.Option(
        None, "--user", help="Who owns the broker's files and runs it [default: you]."
    ),
) -> None:
    """Write DIR/mosquitto.conf, passwd, acl and secrets/{name}.url for each client.

    Run it again with the full list of clients to add or remove one: existing
    passwords are kept unless --rotate names the client.
    """
    from central.brokerconf import Clients, TlsFiles, parse_names, write_broker_config

    # Mistakes raise UserError (BrokerConfigError is one): one line, exit code 2.
    if (tls_cert is None) != (tls_key is None):
        raise UserError("give --tls-cert and --tls-key together")
    if tls_ca is not None and tls_cert is None:
        raise UserError("--tls-ca needs --tls-cert and --tls-key")
    clients = Clients(
        site=site,
        stations=parse_names(stations, what="station"),
        supervisors=parse_names(supervisors, what="supervisor"),
    )
    tls = None
    if tls_cert is not None and tls_key is not None:
        tls = TlsFiles(cert=tls_cert, key=tls_key, ca=tls_ca)
    setup = write_broker_config(
        out=out,
        clients=clients,
        host=host or socket.getfqdn(),
        port=port,
        bind=bind,
        tls=tls,
        rotate=rotate or (),
        user=user,
    )
    typer.echo(f"site {clients.site}: broker {setup.url}, files in {setup.out}")
    width = max(len(c.name) for c in setup.clients)
    for client in setup.clients:
        where = "(refused once the broker reloads)" if client.outcome == "removed" else ""
        typer.echo(f"  {client.name:<{width}}  {client.outcome:<7}  {where or client.secrets_file}")
    typer.echo(f"run: {setup.command}")
    typer.echo("a running broker reads passwd and acl again on SIGHUP")
