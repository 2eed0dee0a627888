"""irctest controller for charla: `deno task irctest` runs the irctest
conformance suite (../shared/irctest, unmodified) against server.ts.

Each test case starts its own server:

    deno run --allow-net --allow-read <repo>/server.ts --relay -p 0 \
        --irc 127.0.0.1:<port> --server-name My.Little.Server \
        --oper-file <tmp>/opers [--password-file <tmp>/password]

and waits until the IRC port accepts a connection. Everything binds and
connects on 127.0.0.1 only (irctest's own port finder answers 0.0.0.0, which
this controller does not use). TLS, websockets and services are not offered:
those test cases are skipped as "not implemented by controller". The IRC
operator irctest's OPER tests use (operuser, operpassword) is in the opers
file; the server is named My.Little.Server, as the tests expect.

What charla claims decides what irctest skips: the IRCv3 capabilities below
(a test that needs message-tags, batch or labeled-response is skipped when
the server NAKs it), and the ISUPPORT tokens (ELIST is M, N and U: the
creation and topic time filters C and T are not offered, so the two tests
that sleep for minutes of fake time are skipped).

If the server stops before its IRC port opens (say, it does not know --irc),
the whole run stops at once with the server's own error, rather than failing
every test case the same way.

Environment:
  CHARLA_REPO          the repository (default: two folders above this file)
  DENO                 the deno binary (default: deno on PATH)
  IRCTEST_DEBUG_LOGS=1 show the server's stdout and stderr as it runs
"""

import os
from pathlib import Path
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Dict, FrozenSet, List, Optional, Set, Tuple, Type

import pytest

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities

REPO = Path(os.environ.get("CHARLA_REPO") or Path(__file__).resolve().parents[2])
LOOPBACK = "127.0.0.1"
# How long a server may take to open its IRC port: the first `deno run` in a
# fresh DENO_DIR transpiles every module, which takes a few seconds.
START_DEADLINE_S = 60.0


class CharlaController(BaseServerController, DirectoryBasedController):
    """Starts server.ts with an IRC port for each irctest test case."""

    software_name = "charla"
    supported_sasl_mechanisms: Set[str] = set()
    supports_sts = False
    # What 005 must declare (isupport.py testValues checks it): what
    # IrcNetwork in lib/transports/irc.ts declares.
    isupport: Dict[str, Optional[str]] = {
        "CASEMAPPING": "ascii",
        "CHANTYPES": "#",
        "NICKLEN": "32",
        "CHANNELLEN": "33",
        "PREFIX": "(ov)@+",
        "CHANMODES": ",,,nst",
        "ELIST": "MNU",
        "UTF8ONLY": None,  # tokens without a value
        "WHOX": None,
    }
    # IRCv3 capabilities charla offers (CAPABILITIES in lib/transports/irc.ts,
    # besides userhost-in-names, which irctest has no name for); a test that
    # needs one not listed here is skipped when the server NAKs it, and fails
    # when it is listed and NAKed.
    capabilities: FrozenSet[Capabilities] = frozenset(
        {
            Capabilities.ECHO_MESSAGE,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
        }
    )

    def get_hostname_and_port(self) -> Tuple[str, int]:
        # irctest picks a free port by binding "" and reports 0.0.0.0; keep the
        # port it reserved (so parallel controllers do not collide) but only
        # ever use loopback.
        (_, port) = super().get_hostname_and_port()
        return (LOOPBACK, port)

    def server_command(
        self, port: int, password_file: Optional[Path], oper_file: Optional[Path] = None
    ) -> List[str]:
        """The command line that runs the server with its IRC port on `port`."""
        deno = os.environ.get("DENO") or shutil.which("deno") or "deno"
        command = [
            deno,
            "run",
            "--allow-net",
            "--allow-read",
            str(REPO / "server.ts"),
            "--relay",
            "-p",
            "0",
            "--irc",
            f"{LOOPBACK}:{port}",
            "--server-name",
            "My.Little.Server",
        ]
        if oper_file is not None:
            command += ["--oper-file", str(oper_file)]
        if password_file is not None:
            command += ["--password-file", str(password_file)]
        return command

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if ssl:
            raise NotImplementedByController("TLS")
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        if run_services:
            raise NotImplementedByController("Services")
        assert self.proc is None
        # faketime is ignored on purpose: it only speeds up the LIST C</T<
        # filters, which run only if the server declares ELIST with C or T.
        self.hostname = LOOPBACK
        self.port = port
        self.port_open = False
        self.create_config()
        assert self.directory
        password_file = None
        if password is not None:
            password_file = self.directory / "password"
            password_file.write_text(password + "\n")
        oper_file = self.directory / "opers"
        oper_file.write_text("operuser operpassword\n")
        self.stderr_path = self.directory / "stderr.txt"
        self.stderr_file = self.stderr_path.open("wb")
        debug = self.debug_mode
        self.proc = self.execute(
            self.server_command(port, password_file, oper_file),
            proc_name="charla",
            stdin=subprocess.DEVNULL,
            stdout=None if debug else subprocess.DEVNULL,
            stderr=None if debug else self.stderr_file,
        )

    def wait_for_port(self) -> None:
        """Waits until the IRC port accepts a connection, as irctest's own
        does (connect, QUIT, read until ERROR or the close), but on loopback
        and with a clear stop when the server exits first."""
        if self.port_open:
            return
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            self._stop_run_if_exited()
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=1.0) as c:
                    c.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
                    c.sendall(b"QUIT :chkport\r\n")
                    data = b""
                    try:
                        while b"chkport" not in data and b"ERROR" not in data:
                            chunk = c.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                    except (ConnectionResetError, socket.timeout):
                        pass
                self.port_open = True
                return
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"charla's IRC port {LOOPBACK}:{self.port} did not open "
                        f"within {START_DEADLINE_S:.0f} s"
                    ) from None
                time.sleep(0.05)

    def _stop_run_if_exited(self) -> None:
        assert self.proc
        code = self.proc.poll()
        if code is None:
            return
        self.stderr_file.close()
        stderr = self.stderr_path.read_text(errors="replace").strip()
        command = " ".join(self.server_command(self.port, None))
        pytest.exit(
            f"charla exited with code {code} before its IRC port "
            f"{LOOPBACK}:{self.port} opened, so no IRC test can run.\n"
            f"  command: {command}\n"
            f"  stderr:  {stderr or '(empty)'}",
            returncode=3,
        )

    def kill(self) -> None:
        stderr_file = getattr(self, "stderr_file", None)
        if stderr_file is not None and not stderr_file.closed:
            stderr_file.close()
        super().kill()  # stops the server, then removes the temporary folder


def get_irctest_controller_class() -> Type[CharlaController]:
    return CharlaController
