"""pytest-benchmark suites of pyrnn (run explicitly: python -m pytest bench/ --benchmark-enable).

PYRNN_BENCH_THREADS sets the thread count of every implementation (default:
pyrnn.get_num_threads()); the `quick` marker selects bench --quick's case list.
"""
import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "quick: a case of `python -m pyrnn bench --quick`'s list")


@pytest.fixture(scope="session")
def threads():
    """Every implementation's thread count, set for the whole session."""
    import pyrnn
    from pyrnn import bench

    count = int(os.environ.get("PYRNN_BENCH_THREADS", 0)) or pyrnn.get_num_threads()
    bench.available_peers()   # import the peers first, so that their thread counts are set too
    with bench.thread_limits(count):
        yield count
