"""gif_lite: influence functions from the first-order approximation up to GIF, small and exact.

The core, one module per idea: :mod:`~gif_lite.params`, :mod:`~gif_lite.objective`,
:mod:`~gif_lite.curvature`, :mod:`~gif_lite.solvers`, :mod:`~gif_lite.influence`,
:mod:`~gif_lite.attribution`, :mod:`~gif_lite.tasks`, :mod:`~gif_lite.selection`, :mod:`~gif_lite.spectrum`,
:mod:`~gif_lite.train`, :mod:`~gif_lite.progress` and the shared aliases of :mod:`~gif_lite.types`;
:mod:`~gif_lite.checks` holds the one set of boundary checks every entry point uses.  The chapters'
helpers live in :mod:`gif_lite.book`.

``__all__`` is the contract (the objective, the estimators, attribution, the curvature operators, the
results and the errors, see ``DESIGN.md``); every other public name of the core modules is reachable
here too (``gl.lanczos``, ``gl.HESSIAN_CHUNK``, ...) and in its own module, which is where it lives.
"""

from . import checks
from .attribution import (
    ATTRIBUTION_ESTIMATORS,
    DENSE_AUTO_LIMIT,
    GRADIENT_MEMORY_BUDGET,
    clear_cache,
    example_gradients,
    removal_effects,
    self_influence,
)
from .checks import GifLiteError, GifLiteTypeError, GifLiteWarning, ModelCallError
from .curvature import (
    EKFAC,
    KFAC,
    CurvatureOperator,
    DenseOperator,
    FisherKind,
    HessianOperator,
    LossKind,
    LowRank,
    StochasticHessian,
    as_operator,
)
from .influence import (
    ESTIMATOR_SPECS,
    ESTIMATORS,
    DampedSystem,
    Estimators,
    EstimatorSpec,
    InfluenceResult,
    SolveOptions,
    default_tol,
    frozen_influence,
    generalized_influence,
    influence,
    misfit,
    project,
    projected_influence,
    second_order_influence,
    second_order_relabel_influence,
)
from .objective import DEFAULT_MAX_DENSE_PARAMS, HESSIAN_CHUNK, HVP_METHODS, HvpMethod, Objective, l2_penalty
from .params import (
    ParamLayout,
    apply_update,
    check_group,
    check_subset,
    check_vector,
    count_parameters,
    embed,
    flat_offsets,
    flat_params,
    keep_mask,
    param_layout,
    reset_parameters,
    set_flat_params,
    trainable_parameters,
    weight_layers,
)
from .progress import progress_bar, progress_enabled
from .selection import SELECTION_METHODS, LayerSelection, LayerSpec, Selection, select, select_parameters
from .solvers import (
    LEAST_SQUARES_SOLVERS,
    SQUARE_SOLVERS,
    ConvergenceWarning,
    MatMat,
    SolveResult,
    batched_lsqr,
    batched_minres,
    block_cg,
    cg,
    direct,
    finish,
    landweber,
    lissa,
    lsqr,
    minres,
    relative_residual,
)
from .spectrum import (
    LanczosResult,
    lanczos,
    lanczos_steps,
    negative_eigenvalue_fraction,
    spectral_quadrature,
    top_magnitude_eigenvalues,
    top_magnitude_negative_share,
)
from .tasks import InfluenceProblem, relabel_problem, removal_problem
from .train import (
    Evaluation,
    Recipe,
    Trainer,
    TrainingWarning,
    TrainResult,
    drop_examples,
    evaluate,
    newton_polish,
    objective_value,
    predict,
    relabel_examples,
    retrain_relabelled,
    retrain_without,
    train_lbfgs,
    train_minibatch,
)
from .types import Data, Group, LossFn, MatVec, Subset

__version__ = "0.1.0"

#: The contract: at most 45 names (tests/test_api.py).
__all__ = [
    "EKFAC",
    "KFAC",
    "ConvergenceWarning",
    "Data",
    "DenseOperator",
    "Estimators",
    "GifLiteError",
    "GifLiteTypeError",
    "GifLiteWarning",
    "HessianOperator",
    "InfluenceProblem",
    "InfluenceResult",
    "LossFn",
    "LowRank",
    "ModelCallError",
    "Objective",
    "Selection",
    "SolveOptions",
    "SolveResult",
    "StochasticHessian",
    "Subset",
    "__version__",
    "apply_update",
    "count_parameters",
    "embed",
    "evaluate",
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
    "retrain_relabelled",
    "retrain_without",
    "second_order_influence",
    "second_order_relabel_influence",
    "select",
    "self_influence",
    "set_flat_params",
    "train_lbfgs",
    "train_minibatch",
]
