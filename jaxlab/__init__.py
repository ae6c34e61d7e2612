"""jaxlab: how often does training succeed, and for which settings?"""

from jaxlab.config import SweepConfig
from jaxlab.contract import Outcome, Problem
from jaxlab.datasets import DATASETS, dataset_digest, get_dataset, load_dataset
from jaxlab.descent import DescentResult, Status, descend, gd, lab_schedule
from jaxlab.errors import ConfigError
from jaxlab.gradients import manual_loss, network_loss
from jaxlab.network import (
    LAB_DATA,
    LAB_WIDTHS,
    Dataset,
    Dense,
    forward,
    from_vector,
    grid,
    init_params,
    loss,
    n_params,
    predict,
    to_vector,
)
from jaxlab.objectives import OBJECTIVES, Objective, get_objective, minimize
from jaxlab.presets import preset
from jaxlab.results import SweepResult, load_run
from jaxlab.sweep import run_sweep
from jaxlab.train import OPTIMIZERS, make_optimizer, train

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "Outcome",
    "Problem",
    "SweepConfig",
    "SweepResult",
    "dataset_digest",
    "get_dataset",
    "load_dataset",
    "load_run",
    "preset",
    "run_sweep",
    "LAB_DATA",
    "LAB_WIDTHS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "ConfigError",
    "Dataset",
    "DescentResult",
    "Dense",
    "Objective",
    "Status",
    "descend",
    "forward",
    "from_vector",
    "gd",
    "get_objective",
    "grid",
    "init_params",
    "lab_schedule",
    "loss",
    "make_optimizer",
    "manual_loss",
    "minimize",
    "n_params",
    "network_loss",
    "predict",
    "to_vector",
    "train",
]
