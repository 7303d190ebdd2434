"""ONNX conversion machinery shared by training's export and adoption (models from elsewhere).

- ``register_converters``: skl2onnx converters tabserve needs beyond the stock ones — a
  SimpleImputer that keeps double precision (ONNX's ``Imputer`` has no double kernel in
  onnxruntime, and casting to float32 would move tree split decisions), a fix for skl2onnx
  1.20's HistGradientBoosting export, and XGBoost and LightGBM (via onnxmltools, when installed)
  so pipelines ending in them convert like any other.
- graph surgery on a converted model: feature names back on the inputs, double inputs in front
  of float32 graphs, one [N, 1] input per feature in front of a graph that takes one [N, k]
  matrix, and the contract's output names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
VARIABLE_OUTPUT = "variable"

_registered = False


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer for numeric inputs as plain ONNX ops, in the input's own precision."""
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    imputer = operator.raw_operator
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    from onnx import TensorProto
    from skl2onnx.operator_converters.common import concatenate_variables

    stats = np.asarray(imputer.statistics_, dtype=np.float64)
    x = concatenate_variables(scope, operator.inputs, container)
    fill = scope.get_unique_variable_name("impute_fill")
    container.add_initializer(fill, TensorProto.DOUBLE, [1, len(stats)], stats.tolist())
    is_nan = scope.get_unique_variable_name("impute_isnan")
    container.add_node("IsNaN", [x], [is_nan], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [is_nan, fill, x],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


def _patch_hist_gradient_boosting() -> None:
    """skl2onnx 1.20 passes a Python ``False`` as the missing-value flag of HGB leaves, which
    current onnx rejects in an integer attribute; cast it to int before the node is built."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node
    if getattr(original, "_tabserve_patched", False):
        return

    def add_node(*args: Any, **kwargs: Any) -> Any:
        flag = kwargs.get("nodes_missing_value_tracks_true")
        if flag is not None:
            kwargs["nodes_missing_value_tracks_true"] = int(flag)
        return original(*args, **kwargs)

    add_node._tabserve_patched = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = add_node


def register_converters() -> None:
    global _registered
    if _registered:
        return
    _patch_hist_gradient_boosting()
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    update_registered_converter(
        SimpleImputer,
        "SklearnSimpleImputer",
        calculate_sklearn_imputer_output_shapes,
        _convert_imputer,
        overwrite=True,
    )
    _register_boosting()
    _registered = True


def _register_boosting() -> None:
    """XGBoost and LightGBM estimators inside sklearn pipelines, via onnxmltools' converters."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor
    except ImportError:
        pass
    else:
        update_registered_converter(
            XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
            convert_xgboost, options=options,
        )  # fmt: skip
        update_registered_converter(
            XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
            convert_xgboost,
        )  # fmt: skip
        from tabserve.training.xgboost_labels import LabelledXGBClassifier

        update_registered_converter(
            LabelledXGBClassifier, "TabserveLabelledXGBClassifier",
            calculate_linear_classifier_output_shapes, convert_xgboost, options=options,
        )  # fmt: skip
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:
        pass
    else:
        update_registered_converter(
            LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
            convert_lightgbm, options=options,
        )  # fmt: skip
        update_registered_converter(
            LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
            convert_lightgbm,
        )  # fmt: skip


def uses_float32(estimator: Any) -> bool:
    """Tree ensembles compare in float32 (sklearn's, XGBoost's, LightGBM's and ONNX's tree
    operators), so they are converted on float32 inputs."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    trees: tuple[type, ...] = (
        RandomForestClassifier, RandomForestRegressor, HistGradientBoostingClassifier,
        HistGradientBoostingRegressor, ExtraTreesClassifier, ExtraTreesRegressor,
        GradientBoostingClassifier, GradientBoostingRegressor, DecisionTreeClassifier,
        DecisionTreeRegressor,
    )  # fmt: skip
    boosting = any(
        c.__module__.split(".")[0] in ("xgboost", "lightgbm") for c in type(estimator).__mro__
    )
    return isinstance(estimator, trees) or boosting


def restore_input_names(model: Any, names: list[str]) -> None:
    """Give graph inputs the features' exact names.

    skl2onnx sanitises names ("sepal length (cm)" → "sepal_length__cm_"); the contract is
    the feature name as is, which ONNX allows. Inputs keep the order of ``initial_types``.
    """
    inputs = list(model.graph.input)
    if len(inputs) != len(names):
        raise RuntimeError(f"ONNX graph has {len(inputs)} inputs for {len(names)} features")
    taken = {o for n in model.graph.node for o in n.output} | {
        i.name for i in model.graph.initializer
    }
    for graph_input, new in zip(inputs, names, strict=True):
        old = graph_input.name
        if old == new:
            continue
        if new in taken:
            raise RuntimeError(f"feature name {new!r} collides with a name inside the ONNX graph")
        for node in model.graph.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        graph_input.name = new


def double_inputs(model: Any, names: list[str]) -> None:
    """Make the float32 graph inputs ``names`` double, casting right after the input.

    The contract is double inputs for every model; tree models are converted on float32 inputs
    (skl2onnx's tree converters only produce valid graphs and sklearn-exact thresholds in
    float32), so a Cast to float32 sits in front of them.
    """
    from onnx import TensorProto, helper

    casts = []
    for graph_input in model.graph.input:
        if graph_input.name not in names:
            continue
        inner = f"{graph_input.name}__float32"
        for node in model.graph.node:
            for i, name in enumerate(node.input):
                if name == graph_input.name:
                    node.input[i] = inner
        graph_input.type.tensor_type.elem_type = TensorProto.DOUBLE
        casts.append(
            helper.make_node(
                "Cast", [graph_input.name], [inner], to=TensorProto.FLOAT, name=f"cast_{inner}"
            )
        )
    for offset, node in enumerate(casts):
        model.graph.node.insert(offset, node)


def concat_inputs(model: Any, names: list[str], double: bool) -> None:
    """Replace a graph's one [N, k] input by k inputs of shape [N, 1] named as the features.

    An estimator fitted on a plain matrix or DataFrame (no ColumnTransformer picking columns by
    name) converts to a graph with one input; the contract is one input per feature, so a
    Concat (after a Cast to the graph's element type when ``double``) feeds the old input.
    """
    from onnx import TensorProto, helper

    (old,) = list(model.graph.input)
    element = old.type.tensor_type.elem_type
    parts = []
    nodes = []
    for name in names:
        part = name
        if double and element != TensorProto.DOUBLE:
            part = f"{name}__cast"
            nodes.append(helper.make_node("Cast", [name], [part], to=element, name=f"cast_{part}"))
        parts.append(part)
    nodes.append(helper.make_node("Concat", parts, [old.name], axis=1, name="tabserve_concat"))
    kind = TensorProto.DOUBLE if double else element
    new_inputs = [helper.make_tensor_value_info(n, kind, [None, 1]) for n in names]
    del model.graph.input[:]
    model.graph.input.extend(new_inputs)
    for offset, node in enumerate(nodes):
        model.graph.node.insert(offset, node)


def name_outputs(model: Any, classifier: bool) -> None:
    """Rename the graph's outputs to the contract's: label + probabilities, or variable."""
    wanted = [LABEL_OUTPUT, PROBABILITIES_OUTPUT] if classifier else [VARIABLE_OUTPUT]
    outputs = list(model.graph.output)
    if len(outputs) < len(wanted):
        raise RuntimeError(f"ONNX outputs are {[o.name for o in outputs]}, expected {wanted}")
    for graph_output, new in zip(outputs, wanted, strict=False):
        old = graph_output.name
        if old == new:
            continue
        for node in model.graph.node:
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
        graph_output.name = new
    del model.graph.output[len(wanted) :]
