"""The ``hive`` command line.  The only module that imports click."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import tomllib
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from hive import _secret
from hive._compiled import build
from hive._config import Config, ConfigError, usable_cores
from hive._logs import setup_logging
from hive.cli.status import format_hives, format_status
from hive.engine import ENGINES, HeadLimits
from hive.supervisor.control import (
    ControlError,
    RunningHive,
    control_dir,
    control_path,
    request,
    running_hives,
)
from hive.supervisor.listeners import (
    ListenerError,
    SocketGroups,
    bind_socket,
    close_listener,
    parse_bind,
    socket_address,
    url_for,
)
from hive.supervisor.systemd import inherited_sockets
from hive.worker.connection import ConnectionLimits

__all__ = ["main"]

_HEAD = HeadLimits()
_CONN = ConnectionLimits()


log = logging.getLogger("hive.supervisor")


def _fail(message: str) -> NoReturn:
    click.echo(f"hive: error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hive")
def main() -> None:
    """hive: a multi-core HTTP server with Twisted Web's resource model."""


def _control_option(function: Any) -> Any:
    return click.option(
        "--control",
        metavar="PATH",
        default=None,
        envvar="HIVE_CONTROL",
        help="The supervisor's control socket  [default: NAME.ctl in $XDG_RUNTIME_DIR/hive]",
    )(function)


def _target_options(function: Any) -> Any:
    """--name and --control: which running hive a command talks to."""
    function = _control_option(function)
    return click.option(
        "-n",
        "--name",
        metavar="NAME",
        default=None,
        envvar="HIVE_NAME",
        help="The hive to talk to (hive list shows them)  [default: the one running]",
    )(function)


def _size(text: str) -> int:
    """Bytes from '512M', '2G', '1048576'."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise ConfigError(f"max_memory: expected a size such as 512M, got {text!r}") from None


@main.command()
@click.argument("app", metavar="MODULE:ATTRIBUTE", required=False)
@click.option(
    "--config",
    "config_file",
    metavar="PATH",
    default=None,
    envvar="HIVE_CONFIG",
    help="A TOML file of settings (keys are option names); flags win over HIVE_* "
    "environment variables, which win over the file.",
)
@click.option(
    "-b",
    "--bind",
    "binds",
    multiple=True,
    metavar="ADDRESS",
    help="host:port, [v6]:port or unix:/path; repeat for more  [default: 127.0.0.1:8080]",
)
@click.option("-w", "--workers", type=int, default=None, help="Worker processes  [default: cores]")
@click.option(
    "--socket-mode",
    type=click.Choice(["reuseport", "shared"]),
    default="reuseport",
    show_default=True,
    help="A listening socket per worker slot, or one for all.",
)
@click.option("--backlog", default=2048, show_default=True, help="Listen queue length.")
@click.option(
    "--http",
    type=click.Choice(["auto", *ENGINES]),
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
@click.option(
    "--log-format",
    type=click.Choice(["combined", "json"]),
    default="combined",
    show_default=True,
    help="Access log lines.",
)
@click.option("--error-log", default=None, metavar="PATH", help="Error log file [default: stderr]")
@click.option(
    "--forwarded-allow",
    multiple=True,
    metavar="ADDRESSES",
    help="Proxies (addresses, networks, '*') whose Forwarded and X-Forwarded-* headers "
    "are believed.",
)
@click.option(
    "--root-path",
    default=None,
    metavar="PREFIX",
    help="The path (/app) those proxies serve the site under and strip, when they do not "
    "send X-Forwarded-Prefix.",
)
@click.option("--certfile", default=None, metavar="PATH", help="TLS certificate chain (PEM).")
@click.option("--keyfile", default=None, metavar="PATH", help="TLS private key (PEM).")
@click.option(
    "--session-dir",
    default=None,
    metavar="DIR",
    help="Where the session store lives  [default: $XDG_RUNTIME_DIR/hive or /tmp/hive-UID]",
)
@click.option(
    "--session-cookie",
    default="HIVE_SESSION",
    show_default=True,
    metavar="NAME",
    help="The session cookie's name.",
)
@click.option(
    "--secret-file",
    default=None,
    metavar="PATH",
    help="The server's secret (Digest nonces), for several hosts  [default: random per run]",
)
@click.option(
    "--pubsub",
    default=None,
    metavar="URL",
    help="The bus between hosts: redis://host:port/db  [default: the supervisor, this host]",
)
@click.option("--display-tracebacks", is_flag=True, help="Show tracebacks on 500 pages.")
@click.option(
    "--reload",
    is_flag=True,
    help="Development mode: reload when a source file changes; tracebacks on 500 pages,"
    " one worker unless --workers.",
)
@click.option(
    "--reload-dir",
    "reload_dirs",
    multiple=True,
    metavar="DIR",
    help="With --reload: watch DIR instead of the app's directory; repeatable.",
)
@click.option("--wsgi", is_flag=True, help="MODULE:ATTRIBUTE is a WSGI application.")
@click.option("--asgi", is_flag=True, help="MODULE:ATTRIBUTE is an ASGI 3 application.")
@click.option(
    "--threads", default=10, show_default=True, help="WSGI threads per worker; 0: on the loop."
)
@click.option("--server-header", default="hive", show_default=True, help="'' for none.")
@click.option(
    "--graceful-timeout", default=30.0, show_default=True, help="Seconds to finish on stop."
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds a worker may be silent.")
@click.option("--boot-timeout", default=60.0, show_default=True, help="Seconds to start a worker.")
@click.option("--max-requests", default=0, show_default=True, help="Recycle after N requests.")
@click.option("--max-requests-jitter", default=0, show_default=True, help="Up to N more.")
@click.option("--max-memory", default="0", show_default=True, help="Recycle above (e.g. 512M).")
@click.option(
    "--app-dir", default=None, metavar="DIR", help="Import the app from DIR  [default: .]"
)
@click.option(
    "--path",
    default=None,
    metavar="DIR",
    help="Serve the files under DIR (as twistd web --path); no MODULE:ATTRIBUTE then.",
)
@click.option(
    "--scripts",
    is_flag=True,
    help="With --path: run its .rpy, .epy and .cgi files, as twistd web --path does "
    "(code from the served directory runs in the workers).",
)
@click.option(
    "--name",
    default=None,
    metavar="NAME",
    help="What hive list and --name call this hive  [default: its first address]",
)
@_control_option
@click.option("--pid-file", default=None, metavar="PATH", help="Write the supervisor's pid here.")
@click.option(
    "--metrics-bind",
    default=None,
    metavar="ADDRESS",
    help="Serve /metrics, /healthz, /readyz, /status here (the supervisor).",
)
@click.option("--max-request-line", default=_HEAD.max_request_line, show_default=True)
@click.option("--max-head-size", default=_HEAD.max_head_bytes, show_default=True)
@click.option("--max-header-count", default=_HEAD.max_header_count, show_default=True)
@click.option("--max-body-size", default=_CONN.max_body_size, show_default=True)
@click.option("--head-timeout", default=_CONN.head_timeout, show_default=True)
@click.option("--body-timeout", default=_CONN.body_timeout, show_default=True)
@click.option("--keep-alive-timeout", default=_CONN.keep_alive_timeout, show_default=True)
@click.option("--send-timeout", default=_CONN.send_timeout, show_default=True)
@click.option(
    "--websocket-drain-timeout",
    default=_CONN.websocket_drain_timeout,
    show_default=True,
    help="Draining: seconds before open WebSockets are closed with 1001.",
)
@click.pass_context
def run(ctx: click.Context, /, app: str | None, config_file: str | None, **options: Any) -> None:
    """Serve MODULE:ATTRIBUTE (a Site, a root Resource, or a callable returning one; with
    --wsgi a WSGI application, with --asgi an ASGI one) on every core: a supervisor and one
    worker process per core."""
    setup_logging()
    try:
        config = _settings(ctx, app, config_file)
        setup_logging(config.error_log)
        addresses = [parse_bind(text) for text in config.binds]
        ops_address = parse_bind(config.metrics_bind) if config.metrics_bind else None
    except (ConfigError, ListenerError) as exc:
        _fail(str(exc))
    if config.reload:
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            _fail("--reload needs watchfiles: pip install 'hive[reload]'")
    # Imported here so that `hive --help` and `hive status` stay quick.
    from hive.supervisor.runtime import Supervisor
    from hive.supervisor.watch import Sources
    from hive.worker.main import TLSError, tls_context

    try:
        tls_context(config)  # a bad certificate is an error now, not in every worker
    except TLSError as exc:
        _fail(str(exc))
    # The secret is made (or read) before the fork: every worker inherits it in memory.
    try:
        if config.secret_file:
            _secret.set_secret(_secret.load_secret_file(config.secret_file))
        else:
            _secret.server_secret()
    except _secret.SecretError as exc:
        _fail(str(exc))
    inherited = inherited_sockets()
    if inherited:
        # systemd's sockets (socket activation): one group, shared by every worker.
        groups = SocketGroups.adopt(inherited)
        config = dataclasses.replace(config, socket_mode="shared")
    else:
        groups = SocketGroups(
            addresses, backlog=config.backlog, shared=config.socket_mode == "shared"
        )
    ops_socket = None

    def reread() -> Config:
        return _settings(ctx, app, config_file)

    try:
        groups.open()
        log.info("%s build", "compiled (mypyc)" if build() == "mypyc" else "pure Python")
        for url in groups.urls(tls=config.certfile is not None):
            log.info("listening on %s", url)
        if ops_address is not None:
            ops_socket = bind_socket(ops_address, backlog=64)
            log.info("ops endpoint on %s/metrics", url_for(ops_socket))
        name = config.name or _address_name(groups)
        control = config.control or control_path(name)
        sources = (
            Sources.of(config.app_dir, config.reload_dirs, config_file) if config.reload else None
        )
        supervisor = Supervisor(
            config, groups, control, ops_socket, reread=reread, name=name, sources=sources
        )
        with _pid_file(config.pid_file):
            outcome = supervisor.run()
    except (ListenerError, ControlError, OSError) as exc:
        _fail(str(exc))
    finally:
        groups.close()
        if ops_socket is not None:
            close_listener(ops_socket)
    if outcome.code:
        _fail(outcome.message or f"exit status {outcome.code}")


def _settings(ctx: click.Context, app: str | None, config_file: str | None) -> Config:
    """The settings from flags, HIVE_* variables and the TOML file, in that order of weight.

    Read again on reload, so a changed file reaches the new workers.
    """
    values: dict[str, Any] = dict(ctx.params)
    params = {p.name: p for p in ctx.command.params if p.name and p.name != "config_file"}
    explicit = {
        name
        for name in params
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    }
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_file:
        layers.append((f"config {config_file}", _read_toml(config_file, params)))
    layers.append(("environment", _read_environment(params)))
    for origin, layer in layers:  # later layers win
        for name, raw in layer.items():
            if name in explicit:
                continue
            param = params[name]
            whole = isinstance(param.type, click.types.IntParamType)
            number = whole or isinstance(param.type, click.types.FloatParamType)
            # click would turn 1.7 into 1 and true into 1: refuse them instead.
            if number and (isinstance(raw, bool) or (whole and isinstance(raw, float))):
                raise ConfigError(f"{origin}: {_key(name)}: expected a number, got {raw!r}")
            try:
                if param.multiple and isinstance(raw, str):
                    raw = [part for part in raw.split(",") if part.strip()]
                values[name] = param.type_cast_value(ctx, raw)
            except click.BadParameter as exc:
                raise ConfigError(f"{origin}: {_key(name)}: {exc.format_message()}") from None
    if values.get("app") and values.get("path"):
        raise ConfigError("give MODULE:ATTRIBUTE or --path, not both")
    if not values.get("app") and not values.get("path"):
        raise ConfigError(
            "no application: give MODULE:ATTRIBUTE, HIVE_APP or app in --config (or --path DIR)"
        )
    return _config(values["app"] or "", tuple(values["binds"]), values)


def _key(name: str) -> str:
    return {"binds": "bind", "reload_dirs": "reload_dir"}.get(name, name)


def _read_toml(path: str, params: dict[str, click.Parameter]) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    names = {_key(name): name for name in params}
    layer = {}
    for key, value in data.items():
        name = names.get(key.replace("-", "_"))
        if name is None:
            raise ConfigError(f"config {path}: unknown setting {key!r}")
        layer[name] = value
    return layer


def _read_environment(params: dict[str, click.Parameter]) -> dict[str, Any]:
    layer = {}
    for name in params:
        value = os.environ.get("HIVE_" + _key(name).upper())
        if value is not None:
            layer[name] = value
    return layer


def _config(app: str, binds: tuple[str, ...], options: dict[str, Any]) -> Config:
    workers = options["workers"]
    return Config(
        app=app,
        app_dir=options["app_dir"],
        path=os.path.abspath(options["path"]) if options["path"] else None,
        scripts=options["scripts"],
        binds=binds or ("127.0.0.1:8080",),
        backlog=options["backlog"],
        http=options["http"],
        loop=options["loop"],
        access_log=None if options["no_access_log"] else options["access_log"],
        log_format=options["log_format"],
        error_log=options["error_log"],
        forwarded_allow=tuple(
            part.strip() for value in options["forwarded_allow"] for part in value.split(",")
        ),
        root_path=options["root_path"] or None,
        certfile=options["certfile"],
        keyfile=options["keyfile"],
        session_dir=options["session_dir"],
        session_cookie=options["session_cookie"],
        secret_file=options["secret_file"],
        display_tracebacks=options["display_tracebacks"] or options["reload"],
        wsgi=options["wsgi"],
        asgi=options["asgi"],
        threads=options["threads"],
        pubsub=options["pubsub"] or None,
        server_header=options["server_header"],
        graceful_timeout=options["graceful_timeout"],
        workers=workers if workers is not None else 1 if options["reload"] else usable_cores(),
        socket_mode=options["socket_mode"],
        timeout=options["timeout"],
        boot_timeout=options["boot_timeout"],
        max_requests=options["max_requests"],
        max_requests_jitter=options["max_requests_jitter"],
        max_memory=_size(options["max_memory"]),
        control=options["control"],
        name=options["name"],
        reload=options["reload"],
        reload_dirs=tuple(os.path.abspath(d) for d in options["reload_dirs"]),
        pid_file=options["pid_file"],
        metrics_bind=options["metrics_bind"],
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
            websocket_drain_timeout=options["websocket_drain_timeout"],
        ),
    )


@contextlib.contextmanager
def _pid_file(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with open(path, "w") as file:
        file.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _address_name(groups: SocketGroups) -> str:
    """A hive's default name: the first address it listens on, as its log says it."""
    address = socket_address(groups.sockets((0,))[0])
    if address.startswith("unix:") and not address.startswith(("unix:/", "unix:@")):
        address = "unix:" + os.path.abspath(address.removeprefix("unix:"))
    return address


class _Several(Exception):
    """More than one hive is running and none was named."""

    def __init__(self, hives: list[RunningHive]) -> None:
        super().__init__()
        self.hives = hives


def _target(control: str | None, name: str | None) -> str:
    """The control socket a command talks to: --control, the hive called --name, or the
    only hive running.  Raises _Several when several run and none was chosen."""
    if control:
        return control
    try:
        if name:
            return _named(name)
        hives = running_hives()
        if len(hives) == 1:
            return hives[0].path
        if hives:
            raise _Several(hives)
        _fail(f"no hive is running (no control socket in {control_dir()})")
    except ControlError as exc:
        _fail(str(exc))


def _named(name: str) -> str:
    """The control socket of the hive called `name`: as given, as an address written
    another way (localhost:8080, :8080), or a port alone when one hive has that port."""
    candidates = [name]
    try:
        address = parse_bind(name)
    except ListenerError:
        pass
    else:
        if address.family == "tcp":
            candidates.append(str(address))
        else:
            candidates.append("unix:" + os.path.abspath(address.path))
    for candidate in candidates:
        path = control_path(candidate)
        if os.path.exists(path):
            return path
    hives = running_hives()
    if name.isdigit():
        ports = [hive for hive in hives if hive.name.endswith(f":{name}")]
        if len(ports) == 1:
            return ports[0].path
    known = ", ".join(hive.name for hive in hives) or "none"
    _fail(f"no hive named {name!r} is running (running: {known})")


def _ask(
    control: str | None, name: str | None, command: str, args: dict[str, Any] | None = None
) -> Any:
    try:
        path = _target(control, name)
    except _Several as several:
        names = ", ".join(hive.name for hive in several.hives)
        _fail(f"several hives are running ({names}); choose one with --name")
    return _send(path, command, args)


def _send(path: str, command: str, args: dict[str, Any] | None = None) -> Any:
    try:
        response = request(path, command, args, timeout=300)
    except ControlError as exc:
        _fail(str(exc))
    if not response.ok:
        _fail(response.error or f"{command} failed")
    return response.data


def _listing(hives: list[RunningHive]) -> list[dict[str, Any]]:
    return [
        {"name": hive.name, "control": hive.path, **(hive.status or {"error": hive.error})}
        for hive in hives
    ]


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the hives' status as JSON.")
def list_hives(as_json: bool) -> None:
    """List the hives running on this host (their control sockets) by name."""
    try:
        hives = _listing(running_hives())
    except ControlError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(hives, indent=2))
    elif hives:
        click.echo(format_hives(hives))
    else:
        click.echo("no hive is running")


@main.command()
@_target_options
@click.option("--json", "as_json", is_flag=True, help="Print the raw status as JSON.")
def status(control: str | None, name: str | None, as_json: bool) -> None:
    """Show the running supervisor's workers; with several hives running and none chosen
    (--name), list the hives."""
    try:
        path = _target(control, name)
    except _Several as several:
        hives = _listing(several.hives)
        if as_json:
            click.echo(json.dumps(hives, indent=2))
        else:
            click.echo(format_hives(hives))
            click.echo("several hives are running: hive status --name NAME shows one")
        return
    data = _send(path, "status")
    click.echo(json.dumps(data, indent=2) if as_json else format_status(data))


@main.command()
@_target_options
def reload(control: str | None, name: str | None) -> None:
    """Start new workers with the code on disk; old ones drain once all new ones are ready."""
    data = _ask(control, name, "reload")
    click.echo(f"reloaded: generation {data['generation']} serving")


@main.command()
@_target_options
def stop(control: str | None, name: str | None) -> None:
    """Stop gracefully: finish requests in flight, then exit."""
    _ask(control, name, "stop")
    click.echo("stopping")


@main.command()
@click.argument("workers", type=click.IntRange(1, 1024))
@_target_options
def scale(workers: int, control: str | None, name: str | None) -> None:
    """Run WORKERS worker processes from now on."""
    _ask(control, name, "scale", {"workers": workers})
    click.echo(f"scaling to {workers} worker(s)")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("user")
@click.option("--bcrypt", "use_bcrypt", is_flag=True, help="bcrypt instead of argon2id.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from stdin.")
@click.option("-D", "--delete", is_flag=True, help="Remove USER from FILE.")
def passwd(file: str, user: str, use_bcrypt: bool, from_stdin: bool, delete: bool) -> None:
    """Set USER's password in FILE, a password file for hive.cred.checkers.HashedPasswordDB
    (argon2id hashes, or bcrypt ones as htpasswd -B writes them)."""
    from hive.cred import _hashing

    name = user.encode("utf-8")
    try:
        if delete:
            if not _hashing.write_password_file(file, name, None):
                _fail(f"no user {user!r} in {file}")
            click.echo(f"removed {user} from {file}")
            return
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        if not password:
            _fail("an empty password is refused")
        scheme = _hashing.BCRYPT if use_bcrypt else _hashing.ARGON2
        hashed = _hashing.hash_password(password.encode("utf-8"), scheme).encode("ascii")
        found = _hashing.write_password_file(file, name, hashed)
    except (_hashing.HashError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"{'updated' if found else 'added'} {user} in {file}")
