"""Fixtures shared by several test modules."""

import pytest
import torch


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
