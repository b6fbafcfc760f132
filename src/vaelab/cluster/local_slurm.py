"""A throw-away one-node SLURM cluster on this machine, to try vaelab's cluster path without a
cluster (and what the ``slurm`` tests run against)::

    sudo apt-get install slurmctld slurmd slurm-client munge      # Debian/Ubuntu, once
    python -m vaelab.cluster.local_slurm start       # prints the SLURM_CONF line to export
    export SLURM_CONF=/tmp/vaelab-slurm/slurm.conf   # then sbatch, squeue, sacct -c use it
    python -m vaelab.cluster.local_slurm status
    python -m vaelab.cluster.local_slurm stop

``start`` writes ``slurm.conf`` from :data:`SLURM_CONF_TEMPLATE` into a fresh state folder
(default ``$TMPDIR/vaelab-slurm``): this host as the only node (CPUs and memory as ``slurmd -C``
reports them) in partition ``debug``, free ports, state, spool and logs in the folder, and job
completion records in ``log/jobcomp.txt`` (read by ``sacct -c``; there is no accounting
database). It makes a fresh munge key, starts ``munged`` as user ``munge`` with its own socket,
then ``slurmctld`` and ``slurmd``, and waits until the node is idle. ``stop`` ends exactly the
daemons whose PIDs ``start`` recorded. Must run as root (slurmd runs jobs as their users).
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

from vaelab.errors import VaelabError

DEBIAN_PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
REQUIRED_PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")
PARTITION = "debug"
DEFAULT_DIR = Path(tempfile.gettempdir()) / "vaelab-slurm"
MUNGE_KEY_BYTES = 1024
#: the daemons in start order; stop ends them in reverse
DAEMONS = ("munged", "slurmctld", "slurmd")

SLURM_CONF_TEMPLATE = Template(
    """\
# A one-node throw-away cluster written by vaelab.cluster.local_slurm; state lives in $root
ClusterName=vaelab-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also delays the restart of a requeued job (default 120 s)
AuthInfo=socket=$root/munge/munge.socket,cred_expire=20
# no cgroups: track job processes by their parent PIDs, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
# look for startable jobs (e.g. a requeued one whose begin time passed) every 2 s, not 60 s
SchedulerParameters=sched_interval=2,bf_interval=5
StateSaveLocation=$root/state
SlurmdSpoolDir=$root/spool
SlurmctldPidFile=$root/slurmctld.pid
SlurmdPidFile=$root/slurmd.pid
SlurmctldLogFile=$root/log/slurmctld.log
SlurmdLogFile=$root/log/slurmd.log
# no accounting database: finished jobs are listed by `sacct -c` from this file
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$root/log/jobcomp.txt
# finished jobs stay visible to squeue/scontrol for 10 minutes; killed jobs get 5 s after SIGTERM
MinJobAge=600
KillWait=5
$node_line State=UNKNOWN
PartitionName=$partition Nodes=$host Default=YES MaxTime=INFINITE State=UP
"""
)


@dataclass(frozen=True)
class ClusterStatus:
    """What ``status`` reports: the daemons alive (name → PID) and the node's state."""

    running: dict[str, int]
    node_state: str | None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _wait(condition, timeout_s: float, poll_s: float = 0.2) -> bool:
    """Poll ``condition()`` until it holds or ``timeout_s`` passed; whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return condition()


@dataclass(frozen=True)
class LocalSlurm:
    """One local cluster, all of whose files live under ``root``."""

    root: Path = DEFAULT_DIR

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """Environment that points SLURM's commands (and jobs' ``scontrol``) at this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _pid_file(self, daemon: str) -> Path:
        return self.root / ("munge/munged.pid" if daemon == "munged" else f"{daemon}.pid")

    def pids(self) -> dict[str, int]:
        """The recorded PID of each daemon that is still alive."""
        running = {}
        for daemon in DAEMONS:
            pid_file = self._pid_file(daemon)
            if pid_file.is_file() and pid_file.read_text().strip().isdigit():
                pid = int(pid_file.read_text())
                if _alive(pid):
                    running[daemon] = pid
        return running

    def node_state(self) -> str | None:
        """``sinfo``'s state of the node (idle, mixed, allocated, down, ...), None if unknown."""
        if not self.conf.is_file() or shutil.which("sinfo") is None:
            return None
        done = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
        )
        states = done.stdout.split()
        return states[0] if done.returncode == 0 and states else None

    def status(self) -> ClusterStatus:
        running = self.pids()
        return ClusterStatus(running, self.node_state() if "slurmctld" in running else None)

    def start(self, timeout_s: float = 60.0) -> None:
        """Write the config, start munged, slurmctld and slurmd, wait for an idle node."""
        missing = [program for program in REQUIRED_PROGRAMS if shutil.which(program) is None]
        if missing:
            raise VaelabError(
                f"{', '.join(missing)} not found; install them with "
                f"`apt-get install {' '.join(DEBIAN_PACKAGES)}`"
            )
        if os.geteuid() != 0:
            raise VaelabError("a local SLURM cluster must be started as root (slurmd runs jobs)")
        if self.pids():
            raise VaelabError(
                f"a local cluster already runs from {self.root}; stop it first with "
                f"`python -m vaelab.cluster.local_slurm stop --dir {self.root}`"
            )
        if self.root.exists():
            shutil.rmtree(self.root)
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True)
        self.root.chmod(0o755)
        self._start_munged()
        self.conf.write_text(self._render_conf())
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run(
                [daemon], env=self.env, check=True, capture_output=True, text=True, timeout=60
            )
        if not _wait(lambda: self.node_state() == "idle", timeout_s, poll_s=0.5):
            state = self.node_state()
            self.stop()
            raise VaelabError(
                f"the local cluster's node did not become idle within {timeout_s:.0f} s "
                f"(state: {state}); see the logs in {self.root / 'log'}"
            )

    def _start_munged(self) -> None:
        munge = pwd.getpwnam("munge")
        munge_dir = self.root / "munge"
        munge_dir.mkdir()
        munge_dir.chmod(0o755)  # clients need to reach the socket; the key stays 0400
        key = munge_dir / "munge.key"
        key.write_bytes(os.urandom(MUNGE_KEY_BYTES))  # what `dd if=/dev/urandom` would give
        key.chmod(0o400)
        for path in (munge_dir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        started = subprocess.run(
            [
                "munged",
                f"--key-file={key}",
                f"--socket={munge_dir / 'munge.socket'}",
                f"--pid-file={self._pid_file('munged')}",
                f"--log-file={munge_dir / 'munged.log'}",
                f"--seed-file={munge_dir / 'munged.seed'}",
            ],
            user=munge.pw_uid,
            group=munge.pw_gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if started.returncode != 0:
            raise VaelabError(
                f"munged (run as user munge) did not start: {started.stderr.strip()}; every "
                f"folder above {self.root} must be readable and searchable by user munge"
            )

    def _render_conf(self) -> str:
        # `slurmd -C` prints this host's NodeName=... CPUs=... RealMemory=... line
        hardware = subprocess.run(
            ["slurmd", "-C"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.splitlines()[0]
        host = socket.gethostname().split(".")[0]
        node_line = hardware.replace(f"NodeName={host}", f"NodeName={host} NodeAddr=127.0.0.1")
        return SLURM_CONF_TEMPLATE.substitute(
            root=self.root,
            host=host,
            ctld_port=_free_port(),
            slurmd_port=_free_port(),
            node_line=node_line,
            partition=PARTITION,
        )

    def _active_jobs(self) -> list[str]:
        done = subprocess.run(
            ["squeue", "-h", "-t", "pending,running,completing,suspended", "-o", "%i"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
        )
        return done.stdout.split() if done.returncode == 0 else []

    def stop(self, timeout_s: float = 30.0) -> list[str]:
        """Cancel the cluster's jobs and wait for them to end (their slurmstepd processes
        outlive slurmd otherwise), then SIGTERM each recorded daemon (slurmd, slurmctld,
        munged), SIGKILL any that outlives ``timeout_s``; the names of those stopped."""
        if {"slurmctld", "slurmd", "munged"} <= self.pids().keys():
            subprocess.run(
                ["scancel", f"--partition={PARTITION}"], env=self.env, timeout=30, check=False
            )
            _wait(lambda: not self._active_jobs(), timeout_s, poll_s=0.5)
        stopped = []
        for daemon in reversed(DAEMONS):
            pid = self.pids().get(daemon)
            if pid is None:
                continue
            os.kill(pid, signal.SIGTERM)
            if not _wait(lambda pid=pid: not _alive(pid), timeout_s):
                os.kill(pid, signal.SIGKILL)
                _wait(lambda pid=pid: not _alive(pid), timeout_s)
            stopped.append(daemon)
        return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.cluster.local_slurm",
        description="Start, inspect or stop a throw-away one-node SLURM cluster (needs root).",
    )
    parser.add_argument("action", choices=("start", "status", "stop"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="its state folder")
    args = parser.parse_args(argv)
    cluster = LocalSlurm(args.dir.resolve())
    try:
        if args.action == "start":
            cluster.start()
            print(f"local SLURM cluster up (partition {PARTITION}); use it with:")
            print(f"export SLURM_CONF={cluster.conf}")
        elif args.action == "status":
            status = cluster.status()
            for daemon in DAEMONS:
                pid = status.running.get(daemon)
                print(f"{daemon}: " + (f"running (pid {pid})" if pid else "not running"))
            print(f"node: {status.node_state or 'unknown'}")
            return 0 if len(status.running) == len(DAEMONS) else 1
        else:
            stopped = cluster.stop()
            names = ", ".join(stopped) or "nothing was running"
            print(f"stopped: {names} (files kept in {cluster.root})")
    except (VaelabError, subprocess.CalledProcessError) as err:
        detail = err.stderr.strip() if isinstance(err, subprocess.CalledProcessError) else err
        print(f"vaelab: error: {detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
