"""Every differentiable op of the library has a test of its second derivative.

``collect_functions`` imports every module of tinygrad_llm (ops/, losses, nn/, models/,
custom_function, ...) and finds the subclasses of tinygrad_llm.autograd.Function defined
there that have a backward (bases such as _Flat and _Modulo included). SECOND_ORDER_TESTS
names, for each of them, the test that checks its second derivative (gradgradcheck under
hypothesis in float64, or a formula / torch parity where that is the sharper check);
NO_SECOND_DERIVATIVE lists the classes that cannot have one, with the reason and the test
that checks the clear error.

A new op without an entry fails here, naming it: write its second-order test in the
test_double_backward_*.py file of its family and add the line.

The table was built by running the test_double_backward_*.py files with every Function's
forward and backward wrapped to record which test reached them (the fused ops, whose
second derivative goes through their ``twin``, by their forward).
"""
import ast
import importlib
import pathlib
import pkgutil

import pytest

import tinygrad_llm
from tinygrad_llm.autograd import Function

TESTS = pathlib.Path(__file__).parent
A = "test_double_backward_activation.py::test_activation_second_derivative"
U = "test_double_backward_unary.py::test_unary_gradgrad"
FLAT = "test_double_backward_unary.py::test_flat_ops_have_zero_second_derivative"

SECOND_ORDER_TESTS = {
    # ops/activation.py
    **dict.fromkeys(["Tanh", "Sigmoid", "Relu", "LeakyRelu", "GeluTanh", "GeluExact", "Silu",
                     "Softplus", "LogSigmoid", "Elu", "Hardsigmoid", "Hardswish"], A),
    # ops/unary.py, ops/trig.py
    **dict.fromkeys(["Exp", "Log", "Log2", "Log1p", "Expm1", "Sqrt", "Rsqrt", "Reciprocal",
                     "Abs", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
                     "Asinh", "Atanh", "Erf"], U),
    **dict.fromkeys(["_Flat", "Floor", "Ceil", "Round", "Trunc", "Sign"], FLAT),  # zero slope
    # ops/elementwise.py, ops/binary.py
    "Add": "test_double_backward_elementwise.py::test_add_sub_mul_gradgrad",
    "Sub": "test_double_backward_elementwise.py::test_add_sub_mul_gradgrad",
    "Mul": "test_double_backward_elementwise.py::test_add_sub_mul_gradgrad",
    "Div": "test_double_backward_elementwise.py::test_div_gradgrad",
    "Neg": "test_double_backward_elementwise.py::test_neg_and_python_number_operands_gradgrad",
    "Pow": "test_double_backward_elementwise.py::test_pow_tensor_exponent_gradgrad",
    "Cast": "test_double_backward_elementwise.py::"
            "test_cast_second_derivative_goes_through_float32_and_back",
    "Clone": "test_double_backward_elementwise.py::test_clone_to_device_and_dropout_gradgrad",
    "ToDevice": "test_double_backward_elementwise.py::test_clone_to_device_and_dropout_gradgrad",
    "Dropout": "test_double_backward_elementwise.py::test_clone_to_device_and_dropout_gradgrad",
    "Maximum": "test_double_backward_elementwise.py::test_maximum_minimum_gradgrad",
    "Minimum": "test_double_backward_elementwise.py::test_maximum_minimum_gradgrad",
    "Clamp": "test_double_backward_elementwise.py::test_clamp_tensor_bounds_gradgrad",
    "Where": "test_double_backward_elementwise.py::test_where_and_masked_fill_gradgrad",
    "_Modulo": "test_double_backward_elementwise.py::test_remainder_fmod_gradgrad",
    "Remainder": "test_double_backward_elementwise.py::test_remainder_fmod_gradgrad",
    "Fmod": "test_double_backward_elementwise.py::test_remainder_fmod_gradgrad",
    "Copysign": "test_double_backward_elementwise.py::test_copysign_gradgrad",
    # ops/matmul.py, ops/einsum.py
    "MatMul": "test_double_backward_matmul.py::test_matmul_gradgrad",
    "Linear": "test_double_backward_matmul.py::test_linear_gradgrad",
    "Einsum": "test_double_backward_matmul.py::test_einsum_gradgrad",
    # ops/reduce.py, ops/scan.py
    "Sum": "test_double_backward_reduce.py::test_sum_and_mean_inside_a_nonlinear_graph",
    "Mean": "test_double_backward_reduce.py::test_sum_and_mean_inside_a_nonlinear_graph",
    "Var": "test_double_backward_reduce.py::test_var_and_std",
    "Amax": "test_double_backward_reduce.py::test_amax_amin",
    "Prod": "test_double_backward_reduce.py::test_prod_with_and_without_zeros",
    "Norm": "test_double_backward_reduce.py::test_norm",
    "LogSumExp": "test_double_backward_reduce.py::test_logsumexp",
    "CumSum": "test_double_backward_scan.py::test_cumsum",
    "CumProd": "test_double_backward_scan.py::test_cumprod_with_and_without_zeros",
    # ops/shape.py, ops/movement.py, ops/pad.py
    "Reshape": "test_double_backward_movement.py::test_reshape_family",
    "Permute": "test_double_backward_movement.py::test_permute_transpose",
    "Expand": "test_double_backward_movement.py::test_expand",
    "Repeat": "test_double_backward_movement.py::test_repeat",
    "RepeatInterleave": "test_double_backward_movement.py::test_repeat_interleave",
    "Flip": "test_double_backward_movement.py::test_flip_roll",
    "Roll": "test_double_backward_movement.py::test_flip_roll",
    "Triangle": "test_double_backward_movement.py::test_tril_triu",
    "Unfold": "test_double_backward_movement.py::test_unfold",
    "ConstantPad": "test_double_backward_movement.py::test_pad",
    "IndexPad": "test_double_backward_movement.py::test_pad",
    # ops/indexing.py, ops/scatter.py
    "GetItem": "test_double_backward_indexing.py::test_getitem",
    "ScatterBack": "test_double_backward_indexing.py::test_scatter_back",
    "Gather": "test_double_backward_indexing.py::test_gather_index_select",
    "IndexSelect": "test_double_backward_indexing.py::test_gather_index_select",
    "Embedding": "test_double_backward_indexing.py::test_embedding",
    "Cat": "test_double_backward_indexing.py::test_cat_stack",
    "Scatter": "test_double_backward_indexing.py::test_scatter",
    "ScatterReduce": "test_double_backward_indexing.py::test_scatter_reduce_nonlinear",
    # fused ops (through their twin) and losses.py
    "Softmax": "test_double_backward_fused.py::test_softmax_and_log_softmax_second_derivative",
    "LogSoftmax": "test_double_backward_fused.py::test_softmax_and_log_softmax_second_derivative",
    "LayerNorm": "test_double_backward_fused.py::test_layer_norm_second_derivative",
    "ScaledDotProductAttention": "test_double_backward_fused.py::test_attention_second_derivative",
    "PackedSelfAttention":
        "test_double_backward_fused.py::test_packed_self_attention_second_derivative",
    "CrossEntropy":
        "test_double_backward_fused.py::test_cross_entropy_on_indices_second_derivative",
    "LSTMLayer": "test_double_backward_fused.py::test_lstm_layer_second_derivative",
    "GeluLinear": "test_double_backward_fused_pairs.py::test_gelu_linear_second_derivative",
    "LayerNormLinear":
        "test_double_backward_fused_pairs.py::test_layer_norm_linear_second_derivative",
    "BinaryCrossEntropy":
        "test_double_backward_fused.py::test_regression_and_binary_losses_second_derivative",
    # custom_function.py: the ctx node of a torch-style Function and its multi-output packing
    "FunctionCtx": "test_double_backward_custom.py::test_saved_output_gives_the_second_derivative",
    "_Unpack": "test_double_backward_custom.py::test_multi_output_function_with_broadcast_gradient",
    "_Pack": "test_double_backward_custom.py::test_multi_output_function_with_broadcast_gradient",
}

NO_SECOND_DERIVATIVE = {
    "_DelayedError": ("the gradient of a @once_differentiable backward: differentiating it "
                      "must raise",
                      "test_double_backward_custom.py::"
                      "test_once_differentiable_raises_on_the_second_derivative"),
}


def collect_functions():
    """{name: class} of the Function subclasses with a backward defined in tinygrad_llm."""
    for info in pkgutil.walk_packages(tinygrad_llm.__path__, "tinygrad_llm."):
        importlib.import_module(info.name)
    found, todo = {}, list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("tinygrad_llm") and cls.backward is not Function.backward:
            found[cls.__name__] = cls
    return found


def _test_functions(filename):
    tree = ast.parse((TESTS / filename).read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_function_of_the_library_has_a_second_order_test():
    found = collect_functions()
    assert len(found) > 80                        # the walk really imported the ops
    listed = SECOND_ORDER_TESTS.keys() | NO_SECOND_DERIVATIVE.keys()
    missing = sorted(f"{name} ({cls.__module__})" for name, cls in found.items()
                     if name not in listed)
    assert not missing, (f"Function subclasses without a second-order test: {missing}; write "
                         f"one (gradgradcheck under hypothesis) and add it to "
                         f"SECOND_ORDER_TESTS in {pathlib.Path(__file__).name}")
    stale = sorted(listed - found.keys())
    assert not stale, f"listed here but no longer Functions of the library: {stale}"


@pytest.mark.parametrize("reference", sorted(
    set(SECOND_ORDER_TESTS.values()) | {test for _, test in NO_SECOND_DERIVATIVE.values()}))
def test_every_referenced_test_exists(reference):
    filename, function = reference.split("::")
    assert filename.startswith("test_double_backward_") and (TESTS / filename).exists()
    assert function in _test_functions(filename), f"{reference} does not exist"
