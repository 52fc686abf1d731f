"""gif_lite: influence functions from the first-order approximation up to GIF, small and exact."""

from .attribution import example_gradients, removal_effects, self_influence
from .influence import (
    InfluenceResult,
    frozen_influence,
    generalized_influence,
    influence,
    projected_influence,
    second_order_influence,
    second_order_relabel_influence,
)
from .objective import HVP_METHODS, Objective
from .params import apply_update, check_subset, flat_params, param_layout, set_flat_params
from .selection import SELECTION_METHODS, LayerSelection, Selection, select, select_parameters
from .solvers import ConvergenceWarning, SolveResult
from .tasks import InfluenceProblem, relabel_problem, removal_problem

__version__ = "0.1.0"

__all__ = [
    "HVP_METHODS",
    "SELECTION_METHODS",
    "ConvergenceWarning",
    "InfluenceProblem",
    "InfluenceResult",
    "LayerSelection",
    "Objective",
    "Selection",
    "SolveResult",
    "__version__",
    "apply_update",
    "check_subset",
    "example_gradients",
    "flat_params",
    "frozen_influence",
    "generalized_influence",
    "influence",
    "param_layout",
    "projected_influence",
    "relabel_problem",
    "removal_effects",
    "removal_problem",
    "second_order_influence",
    "second_order_relabel_influence",
    "select",
    "select_parameters",
    "self_influence",
    "set_flat_params",
]
