import os
import sys

import pytest
import torch

# import the checkout's marlkit even when another copy is installed
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _single_thread():
    """Tiny test networks run fastest on one thread (measured); keeps tests independent of the host."""
    torch.set_num_threads(1)
    yield
