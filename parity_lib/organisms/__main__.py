"""`python -m parity_lib.organisms build|train|measure [--only qwen2|gemma2] [--seed N] [--out DIR]`.

`build` and `train` run on the portable CPU kernels (`kernels.py`): started without them, the process
re-executes itself with them set, since torch reads them when it loads."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from parity_lib.organisms import kernels
from parity_lib.organisms.build import build_organism, remeasure_organism, train_only
from parity_lib.organisms.spec import DEFAULT_SEED, SPECS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m parity_lib.organisms",
                                     description="Rebuild the model organisms shipped in fixtures/models/.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="train, measure and write one or both organisms")
    train = sub.add_parser("train", help="train and save the weights only (no card): what `pytest -m rebuild` runs")
    for cmd in (build, train):
        cmd.add_argument("--seed", type=int, default=DEFAULT_SEED, help="corpus, init and sampling seed")
        cmd.add_argument("--native-kernels", action="store_true",
                         help="train on this CPU's own kernels (no faster measured; the weights differ on other CPUs)")
    sub.add_parser("measure", help="re-measure shipped weights, rewrite card and defaults (no training)")
    for cmd in sub.choices.values():
        cmd.add_argument("--only", choices=sorted(SPECS), help="one organism (default: both)")
        cmd.add_argument("--out", type=Path, help="organism directory (needs --only; default fixtures/models/NAME)")
        cmd.add_argument("--max-new-tokens", type=int, default=256, help="generation length of the measurement")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.out and not args.only:
        parser.error("--out names one directory, so it needs --only qwen2 or --only gemma2")
    trains = args.command in ("build", "train")
    if trains and not args.native_kernels and kernels.supported() and not kernels.in_effect():
        if os.environ.get("PARITY_KERNELS_REEXEC"):
            parser.error(f"the portable kernels did not take effect after re-executing ({kernels.describe()}); "
                         f"rerun with --native-kernels")
        argv = sys.argv[1:] if argv is None else argv
        os.execve(sys.executable, [sys.executable, "-m", "parity_lib.organisms", *argv],
                  {**kernels.env(), "PARITY_KERNELS_REEXEC": "1"})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if trains:
        logging.getLogger(__name__).info("kernels: %s", kernels.describe())
    for key in [args.only] if args.only else sorted(SPECS, reverse=True):
        if args.command == "build":
            prov = build_organism(SPECS[key], args.seed, args.out, max_new_tokens=args.max_new_tokens)
        elif args.command == "train":
            prov = train_only(SPECS[key], args.seed, args.out)
        else:
            prov = remeasure_organism(SPECS[key], args.out, max_new_tokens=args.max_new_tokens)
        print(f"{SPECS[key].name}: weights sha256 {prov.weights_sha256} ({prov.train_seconds:.0f} s training)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
