"""pyrnn: fast recurrent layers (RNN, LSTM, GRU) for CPUs, with a NumPy API.

Forward passes and backpropagation through time run in C++ kernels (SIMD + OpenMP);
see DESIGN.md for the contract and README.md for examples.
"""
import pkgutil

# Run from a source checkout, this folder shadows the installed package, which holds the
# compiled _core: let the package span both so that `python -m pyrnn` and `python -m pytest`
# work from the repository root after `pip install .`.
__path__ = pkgutil.extend_path(__path__, __name__)

from . import _core  # noqa: E402

build_info = _core.build_info
set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads
active_isa = _core.active_isa
available_isas = _core.available_isas

from .layers import GRU, LSTM, RNN, Tape  # noqa: E402

__all__ = ["LSTM", "GRU", "RNN", "Tape", "build_info", "set_num_threads", "get_num_threads",
           "active_isa", "available_isas"]
