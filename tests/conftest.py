"""Fixtures shared by several test modules."""

import pytest
import torch


def pytest_configure(config):
    """With pytest-xdist's default distribution (``-n 2`` alone), tests marked
    ``xdist_group(NAME)`` still share one worker ("loadgroup"): the Ray tests then start one local
    Ray instance, not one per worker. Without xdist, or with another ``--dist``, nothing changes."""
    if getattr(config.option, "dist", None) == "load":
        config.option.dist = "loadgroup"


@pytest.fixture
def one_thread():
    """Runs the test on one torch CPU thread, then restores the previous count.

    The models of these tests are tiny: with several threads on a shared CPU the synchronisation
    costs more than the convolutions.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
