"""The ``hive`` command line.  The only module that imports click."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from hive.accesslog import AccessLog
from hive.config import Config, ConfigError
from hive.engine import HeadLimits
from hive.loader import LoadError
from hive.supervisor.listeners import ListenerError, bind_socket, close_listener, parse_bind
from hive.worker.connection import ConnectionLimits

__all__ = ["main"]

_HEAD = HeadLimits()
_CONN = ConnectionLimits()


def _fail(message: str) -> None:
    click.echo(f"hive: error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hive")
def main() -> None:
    """hive: a multi-core HTTP server with Twisted Web's resource model."""


@main.command()
@click.argument("app", metavar="MODULE:ATTRIBUTE")
@click.option(
    "-b",
    "--bind",
    "binds",
    multiple=True,
    metavar="ADDRESS",
    help="host:port, [v6]:port or unix:/path; repeat for more  [default: 127.0.0.1:8080]",
)
@click.option("--backlog", default=2048, show_default=True, help="Listen queue length.")
@click.option(
    "--http",
    type=click.Choice(["auto", "h11", "httptools"]),
    default="auto",
    show_default=True,
    help="HTTP engine; auto takes httptools when installed.",
)
@click.option(
    "--loop",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    default="auto",
    show_default=True,
    help="Event loop; auto takes uvloop when installed.",
)
@click.option(
    "--access-log",
    default="-",
    show_default=True,
    metavar="PATH",
    help="Access log file, - for standard output.",
)
@click.option("--no-access-log", is_flag=True, help="Write no access log.")
@click.option("--display-tracebacks", is_flag=True, help="Show tracebacks on 500 pages.")
@click.option(
    "--server-header", default="hive", show_default=True, help="Server header; '' for none."
)
@click.option(
    "--graceful-timeout",
    default=30.0,
    show_default=True,
    help="Seconds to finish requests on stop.",
)
@click.option(
    "--app-dir", default=None, metavar="DIR", help="Import the app from DIR  [default: .]"
)
@click.option(
    "--max-request-line",
    default=_HEAD.max_request_line,
    show_default=True,
    help="Bytes; longer gets 414.",
)
@click.option(
    "--max-head-size",
    default=_HEAD.max_head_bytes,
    show_default=True,
    help="Bytes of request head; more gets 431.",
)
@click.option(
    "--max-header-count",
    default=_HEAD.max_header_count,
    show_default=True,
    help="Header fields; more gets 431.",
)
@click.option(
    "--max-body-size",
    default=_CONN.max_body_size,
    show_default=True,
    help="Bytes of request body; more gets 413.",
)
@click.option(
    "--head-timeout",
    default=_CONN.head_timeout,
    show_default=True,
    help="Seconds to receive a request head.",
)
@click.option(
    "--body-timeout",
    default=_CONN.body_timeout,
    show_default=True,
    help="Seconds between body reads.",
)
@click.option(
    "--keep-alive-timeout",
    default=_CONN.keep_alive_timeout,
    show_default=True,
    help="Seconds an idle connection is kept.",
)
@click.option(
    "--send-timeout",
    default=_CONN.send_timeout,
    show_default=True,
    help="Seconds a client may read nothing.",
)
def run(
    app: str, binds: tuple[str, ...], no_access_log: bool, app_dir: str | None, **options: Any
) -> None:
    """Serve MODULE:ATTRIBUTE: a Site, a root Resource, or a callable returning one."""
    _setup_logging()
    try:
        config = Config(
            app=app,
            app_dir=app_dir,
            binds=binds or ("127.0.0.1:8080",),
            backlog=options["backlog"],
            http=options["http"],
            loop=options["loop"],
            access_log=None if no_access_log else options["access_log"],
            display_tracebacks=options["display_tracebacks"],
            server_header=options["server_header"],
            graceful_timeout=options["graceful_timeout"],
            head=HeadLimits(
                max_request_line=options["max_request_line"],
                max_head_bytes=options["max_head_size"],
                max_header_count=options["max_header_count"],
            ),
            connection=ConnectionLimits(
                max_body_size=options["max_body_size"],
                head_timeout=options["head_timeout"],
                body_timeout=options["body_timeout"],
                keep_alive_timeout=options["keep_alive_timeout"],
                send_timeout=options["send_timeout"],
            ),
        )
        addresses = [parse_bind(text) for text in config.binds]
    except (ConfigError, ListenerError) as exc:
        _fail(str(exc))
    # Imported here so that `hive --help` stays quick.
    from hive.worker.main import load_site, run_worker

    sockets = []
    try:
        for address in addresses:
            sockets.append(bind_socket(address, backlog=config.backlog))
        access_log = AccessLog.open(config.access_log)
        site = load_site(config, access_log)
        run_worker(config, sockets, site)
    except (ListenerError, LoadError, OSError) as exc:
        _fail(str(exc))
    finally:
        for sock in sockets:
            close_listener(sock)


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
