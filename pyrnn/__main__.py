"""Command line: `python -m pyrnn <command>`; `python -m pyrnn <command> --help` for its options.

Commands:
  bench   check pyrnn against the float64 oracle, then time it against its peers
          (PyTorch, ONNX Runtime, pyrnn.reference) on DESIGN.md §6's grid; see pyrnn/bench.py
"""
import argparse
import sys


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _parser():
    parser = argparse.ArgumentParser(prog="python -m pyrnn", description="pyrnn's command line tools.")
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    bench = commands.add_parser(
        "bench", help="compare pyrnn with PyTorch, ONNX Runtime and the NumPy oracle",
        description="Check each case against the float64 oracle, then time pyrnn and its peers "
                    "(interleaved, medians) and print one table (DESIGN.md §6).")
    bench.add_argument("--quick", action="store_true",
                       help="a reduced case list and fewer rounds (well under a minute)")
    bench.add_argument("--threads", type=_positive, metavar="N",
                       help="threads for every implementation (default: pyrnn.get_num_threads())")
    bench.add_argument("--json", metavar="FILE", help="write all results and metadata to FILE "
                       "(and a plot next to it, FILE's stem + .png, when matplotlib is installed)")
    bench.add_argument("--plot", metavar="FILE", help="write a PNG of the ratios per case to FILE")
    bench.add_argument("--cases", metavar="PATTERN",
                       help="only the cases whose name matches: comma-separated globs, or substrings "
                            "(e.g. 'lstm', 'gru_latency_*,*_training_h128')")
    bench.add_argument("--rounds", type=_positive, metavar="R",
                       help="timing rounds per case (default 7, --quick 5; slow cases use fewer, >= 3)")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "bench":
        from . import bench
        return bench.main(quick=args.quick, threads=args.threads, json_path=args.json,
                          plot_path=args.plot, pattern=args.cases, rounds=args.rounds)
    return 2


if __name__ == "__main__":
    sys.exit(main())
