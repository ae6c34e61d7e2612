"""Small binary-classification datasets by name (the lab's five points first)."""

from __future__ import annotations

import numpy as np

from jaxlab.errors import check_choice
from jaxlab.network import LAB_DATA, Dataset

__all__ = ["DATASETS", "get_dataset"]

DATASETS: dict[str, Dataset] = {
    # Lab 3, Exercise 3: the centre is class 1, its four neighbours class 0.
    "lab": LAB_DATA,
    # XOR on the corners of the square: the classic problem a 2-2-1 network can just solve.
    "xor": Dataset(
        x=np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]),
        y=np.array([0.0, 1.0, 1.0, 0.0]),
    ),
}


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``."""
    return DATASETS[check_choice("dataset", name, DATASETS)]
