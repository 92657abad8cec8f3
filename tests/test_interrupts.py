"""The stop signals and worker processes (wavesep.interrupts), each case in a fresh interpreter."""

import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")

# A DataLoader worker that is sent SIGTERM before its worker_init_fn ignores stops, as a SIGTERM to
# the whole process group (Slurm, timeout, docker stop) can reach a worker that is still starting:
# the worker signals itself first thing, then calls leave_stops_to_the_parent.
_RACE = """
import contextlib, os, signal, sys
from torch.utils.data import DataLoader
from wavesep.interrupts import leave_stops_to_the_parent, stops_held

def signalled_then_ignoring(worker_id):
    os.kill(os.getpid(), signal.SIGTERM)
    leave_stops_to_the_parent(worker_id)

loader = DataLoader(list(range(8)), batch_size=2, num_workers=1, worker_init_fn=signalled_then_ignoring)
with (stops_held() if sys.argv[1] == "held" else contextlib.nullcontext()):
    batches = iter(loader)
try:
    print(sum(int(b.sum()) for b in batches))
except RuntimeError:
    print("died")
"""


@pytest.mark.parametrize("hold", ["held", "free"])
def test_a_worker_started_while_stops_are_held_survives_an_early_sigterm(hold):
    done = subprocess.run([sys.executable, "-c", _RACE, hold], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # 0 + 1 + ... + 7 = 28 from a worker that lived; without the hold the early SIGTERM kills it
    assert done.stdout.strip() == ("28" if hold == "held" else "died"), done.stderr


def test_a_stop_sent_to_the_holding_thread_arrives_when_the_hold_ends():
    # thread-directed (pthread_kill): a process-directed signal may be taken at once by another
    # thread that does not hold it (torch starts some), so the hold is only certain for this thread
    code = """
import signal, threading
from wavesep.interrupts import stops_held
seen = []
signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
with stops_held():
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
    sum(range(10000))  # handlers run between bytecodes: it would have run here
    inside = len(seen)
after = len(seen)
print(inside, after, len(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "1", "0"]  # held, then delivered; the previous (empty) mask is back
