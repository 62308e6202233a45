"""A real one-node Slurm on localhost for the integration test: munge, slurmctld, slurmd.

Installs Debian's ``slurm-wlm`` and ``munge`` when missing (root and apt-get needed; the
test is skipped, saying why, when they cannot be installed),
writes a slurm.conf under a temporary directory, starts the three daemons and stops
them by PID. Settings that work: select/cons_tres, proctrack/linuxproc,
task/none, no accounting, ``AuthInfo=cred_expire=10`` and ``KillWait=5`` so a requeued
job restarts within seconds. Its munged has a key and a socket of its own
(``AuthInfo=socket=``), so a munge already set up on the machine is left alone.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SLURM_CONF = """\
ClusterName=selfsup-test
SlurmctldHost={host}(127.0.0.1)
AuthType=auth/munge
AuthInfo=cred_expire=10,socket={munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def can_install() -> str | None:
    """Why a local Slurm cannot run here, or None when it can."""
    if shutil.which("slurmctld") and shutil.which("munged"):
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "a local Slurm needs slurm-wlm and munge, or root with apt-get to install them"
    return None


def install() -> str | None:
    """Install slurm-wlm and munge when missing; return why that failed, or None."""
    if shutil.which("slurmctld") and shutil.which("munged"):
        return None
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"]):
        result = subprocess.run(command, capture_output=True, text=True, env=environment)
        if result.returncode != 0:
            return f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}"
    return None


class LocalSlurm:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self._pid_files = [root / "munged.pid", root / "slurmctld.pid", root / "slurmd.pid"]

    def start(self) -> "LocalSlurm":
        for folder in ("state", "spool", "munge"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        socket_path = self.root / "munge" / "munge.socket"
        key_path = self.root / "munge" / "munge.key"
        key_path.write_bytes(os.urandom(1024))
        key_path.chmod(0o600)
        self.conf.write_text(
            SLURM_CONF.format(
                host=socket.gethostname().split(".")[0],
                root=self.root,
                ctld_port=_free_port(),
                d_port=_free_port(),
                cpus=os.cpu_count(),
                memory=4000,
                munge_socket=socket_path,
            )
        )
        subprocess.run(
            [
                "munged",
                "--force",
                f"--socket={socket_path}",
                f"--key-file={key_path}",
                f"--pid-file={self.root / 'munged.pid'}",
                f"--log-file={self.root / 'munged.log'}",
                f"--seed-file={self.root / 'munge' / 'seed'}",
            ],
            check=True,
            env=self.env,
        )
        subprocess.run(["slurmctld", "-f", str(self.conf)], check=True, env=self.env)
        subprocess.run(["slurmd", "-f", str(self.conf)], check=True, env=self.env)
        self._wait_for_node()
        return self

    def _wait_for_node(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-o", "%T", check=False).stdout.strip()
            if state in ("idle", "mixed"):
                return
            time.sleep(1)
        raise RuntimeError(f"the local Slurm node did not come up: sinfo says {state!r}; see {self.root}/*.log")

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, env=self.env, check=check)

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, Restarts, ...)."""
        fields = {}
        for token in self.run("scontrol", "show", "job", job_id).stdout.split():
            key, _, value = token.partition("=")
            fields.setdefault(key, value)
        return fields

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged by PID (SIGKILL after 10 s)."""
        self.run("scancel", "--full", "--user=root", check=False)
        pids = [int(path.read_text().strip()) for path in reversed(self._pid_files) if path.is_file()]
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.5)
        for pid in pids:
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
