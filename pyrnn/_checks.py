"""Argument checking and conversion for the public API: every message names the argument,
what was expected and what was given (ValueError for shapes and values, TypeError for types)."""
import numbers
import operator

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def model_dtype(dtype):
    if dtype is None:  # PyTorch's meaning (the default dtype), not NumPy's (float64)
        return np.dtype(np.float32)
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from exc
    if dt not in SUPPORTED_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def integer(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def shape_text(shape):
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def as_real_array(value, name):
    """np.asarray(value), refusing what is not an array of real numbers."""
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        raise TypeError(f"{name}: expected a rectangular array of real numbers ({exc})") from exc
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {array.dtype}")
    return array


def is_kernel_array(value, dtype):
    """Whether `value` is already what the kernels take: a C-contiguous, aligned ndarray of
    `dtype` (np.frombuffer can give a misaligned one, whose elements C++ may not read)."""
    if type(value) is not np.ndarray or value.dtype != dtype:
        return False
    flags = value.flags
    return flags.c_contiguous and flags.aligned


def float_array(value, name, dtype):
    """A C-contiguous copy (or view) of a floating-point array in the model's dtype.

    Integer, boolean, complex, object and ragged input is refused: a layer's input is data, and
    an integer array is more likely token ids than features."""
    if is_kernel_array(value, dtype):
        return value  # the common case, and the streaming one: no conversion, no copy
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise TypeError(f"{name}: expected a rectangular floating-point array ({exc})") from exc
    if array.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array, got dtype {array.dtype}")
    # (np.require keeps 0-d arrays 0-d, unlike ascontiguousarray; "A": aligned)
    return np.require(array, dtype=dtype, requirements=["C", "A"])


def require_shape(array, expected, name):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {shape_text(expected)}, got {shape_text(array.shape)}")


def lengths_array(lengths, batch, steps):
    """Sequence lengths as a C-contiguous int64 array of shape (batch,), each in [0, steps]."""
    try:
        array = np.asarray(lengths)
    except ValueError as exc:
        raise TypeError(f"lengths: expected a 1-D integer array ({exc})") from exc
    if array.dtype.kind not in "iu":
        raise TypeError(f"lengths: expected an integer array, got dtype {array.dtype}")
    if array.shape != (batch,):
        raise ValueError(f"lengths: expected shape ({batch},), one per sequence, got {shape_text(array.shape)}")
    if batch and (array.min() < 0 or array.max() > steps):
        bad = array[(array < 0) | (array > steps)][0]
        raise ValueError(f"lengths: expected values in [0, {steps}] (T = {steps}), got {bad}")
    return np.require(array, dtype=np.int64, requirements=["C", "A"])
