"""A private RabbitMQ node and a private PostgreSQL cluster for outage tests (pytest plugin:
`pytest_plugins = ["tests.private_services"]`).

Outage tests stop and start their broker and database. They must never do that to the
machine's shared RabbitMQ (127.0.0.1:5672) or PostgreSQL (127.0.0.1:5432): other tests and
helpers use them. So these fixtures start services of their own, and only ever stop those:

- `private_rabbitmq`: a RabbitMQ node with its own node name (`sifhub-test-<pid>-<n>@localhost`),
  AMQP and distribution ports, epmd, Erlang cookie (HOME), config, plugins file (none: no
  management), data and log directories, all in a temporary directory. It is stopped and
  started with `rabbitmqctl -n <its node>` only, and at the end halted, killed by its own
  process group and removed.
- `private_postgres`: a cluster from `initdb` in a temporary directory (run as the `postgres`
  user when the tests run as root: initdb refuses root), on its own port with its Unix socket
  in that directory and trust authentication; `pg_ctl -D <its data dir>` stops and starts it.
  At the end it is stopped (its postmaster killed if need be) and the directory removed.

Both skip, saying why, when the server programs are not installed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Debian's /usr/sbin/rabbitmq-server is a wrapper that re-runs the server as the rabbitmq
# user with the shared node's environment and logs; the real scripts live here.
RABBITMQ_BIN_DIRS = ("/usr/lib/rabbitmq/bin",)
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_SECONDS = 90
CTL_TIMEOUT_SECONDS = 60
_serial = itertools.count(1)


def _which(name: str) -> str | None:
    """Like `which`, also looking in sbin: a non-login PATH may lack it (runuser lives there,
    and on some systems rabbitmq-server)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- RabbitMQ ------------------------------------------------------------------------------


@dataclass
class PrivateRabbit:
    node: str
    port: int
    env: dict[str, str]
    ctl_path: str

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def ctl(self, *args: str) -> str:
        """`rabbitmqctl -n <this node> ...`: never the shared node."""
        done = subprocess.run(
            [self.ctl_path, "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT_SECONDS + 30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", str(CTL_TIMEOUT_SECONDS))

    def running(self) -> bool:
        try:
            self.ctl("await_startup", "--timeout", "5")
        except (RuntimeError, subprocess.TimeoutExpired):
            return False
        return True


def _rabbit_tools() -> tuple[str, str, str]:
    dirs = [*RABBITMQ_BIN_DIRS]
    on_path = _which("rabbitmq-server")
    if on_path:
        dirs.append(str(Path(on_path).parent))
    epmd = _which("epmd") or "/usr/lib/erlang/bin/epmd"
    for directory in dirs:
        server, ctl = Path(directory, "rabbitmq-server"), Path(directory, "rabbitmqctl")
        if server.is_file() and ctl.is_file() and Path(epmd).is_file():
            return str(server), str(ctl), epmd
    pytest.skip("rabbitmq-server, rabbitmqctl or epmd is not installed: no private RabbitMQ node")


def _rabbit_env(base: Path, node: str, port: int) -> dict[str, str]:
    home = base / "home"
    home.mkdir()
    cookie = home / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(20))
    cookie.chmod(0o400)
    conf = base / "rabbitmq.conf"
    conf.write_text(f"listeners.tcp.default = 127.0.0.1:{port}\n")
    plugins = base / "enabled_plugins"
    plugins.write_text("[].\n")
    env_file = base / "rabbitmq-env.conf"  # in place of /etc/rabbitmq's, which names the
    env_file.write_text("")  # shared node
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    return {
        **keep,
        "HOME": str(home),  # the server's and rabbitmqctl's cookie: this node's own
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(free_port()),
        "RABBITMQ_CONF_ENV_FILE": str(env_file),
        "RABBITMQ_CONFIG_FILE": str(conf),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(free_port()),  # its own epmd: the shared one is not touched
    }


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the group the process leads (it was started in a session of its own): the
    group id cannot be reused while any member is left, so this reaches only ours."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def private_rabbitmq() -> Iterator[PrivateRabbit]:
    """A private RabbitMQ node for this module's tests; running at the start of each use
    (a test that stops it must start it again, see `rabbit_outage`)."""
    server, ctl, epmd = _rabbit_tools()
    base = Path(tempfile.mkdtemp(prefix="sifhub-rabbit-"))
    node = f"sifhub-test-{os.getpid()}-{next(_serial)}@localhost"
    env = _rabbit_env(base, node, free_port())
    rabbit = PrivateRabbit(node, int(env["RABBITMQ_NODE_PORT"]), env, ctl)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with open(base / "epmd.out", "wb") as out:
            processes.append(
                subprocess.Popen(
                    [epmd, "-port", env["ERL_EPMD_PORT"], "-address", "127.0.0.1"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        with open(base / "server.out", "wb") as out:
            processes.append(
                subprocess.Popen(
                    [server],
                    env=env,
                    cwd=base,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, killed as one
                )
            )
        rabbit.ctl("wait", "--timeout", str(START_TIMEOUT_SECONDS), env["RABBITMQ_PID_FILE"])
        yield rabbit
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if len(processes) == 2 and processes[-1].poll() is None:
                rabbit.ctl("stop")  # halts this node only
        for process in reversed(processes):
            _stop_process_group(process)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def rabbit_outage(private_rabbitmq: PrivateRabbit) -> Iterator[PrivateRabbit]:
    """The private node, running again after the test whatever the test did to it."""
    yield private_rabbitmq
    if not private_rabbitmq.running():
        private_rabbitmq.start_app()


# --- PostgreSQL ----------------------------------------------------------------------------


@dataclass
class PrivatePostgres:
    data_dir: Path
    port: int
    socket_dir: Path
    as_user: list[str]  # ["runuser", "-u", "postgres", "--"] when run as root
    bin_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        """`pg_ctl -D <this cluster's data dir> ...`: never the shared cluster."""
        done = subprocess.run(
            [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT_SECONDS,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
        log = self.socket_dir / "postgres.log"
        self.pg_ctl("start", "-w", "-t", str(CTL_TIMEOUT_SECONDS), "-l", str(log), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("stop", "-w", "-m", mode)

    def postmaster_pid(self) -> int | None:
        """The running postmaster of this data dir (its pid file may outlive a crash)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        return pid if str(self.data_dir).encode() in command else None


def _postgres_bin() -> Path:
    found = sorted(Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")), key=_major, reverse=True)
    for directory in found:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    on_path = _which("initdb")
    if on_path and _which("pg_ctl"):
        return Path(on_path).parent
    pytest.skip("initdb/pg_ctl are not installed: no private PostgreSQL cluster")


def _major(directory: Path) -> int:
    version = directory.parent.name
    return int(version) if version.isdigit() else 0


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """initdb refuses to run as root: run the cluster as the postgres user then."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no postgres user to run initdb as")
    runuser = _which("runuser")
    if runuser is None:
        pytest.skip("running as root and runuser is missing: cannot run initdb as postgres")
    return [runuser, "-u", "postgres", "--"], user


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private, running PostgreSQL cluster; `url(database)` for the hub."""
    bin_dir = _postgres_bin()
    as_user, user = _run_as()
    base = Path(tempfile.mkdtemp(prefix="sifhub-pg-"))
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    cluster = PrivatePostgres(base / "data", free_port(), base, as_user, bin_dir)
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(cluster.data_dir), "-U", "postgres"]
        subprocess.run(
            [*as_user, *initdb, "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=CTL_TIMEOUT_SECONDS,
        )
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if cluster.postmaster_pid() is not None:
                cluster.stop("immediate")
        pid = cluster.postmaster_pid()  # still there: stop failed; kill its own postmaster
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
