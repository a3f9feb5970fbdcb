"""Command line: python3 -m exporter {export,verify,demo} ... (run from the repository root)."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from . import __version__
from .errors import ExportError

TASKS = ("embedding", "text-generation", "image-classification", "object-detection")
EXIT_ERROR = 1
EXIT_USAGE = 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m exporter",
        description="Export Hugging Face checkpoints to verified TorchScript model folders for ATenSpace Serve.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{export,verify,demo}")

    e = sub.add_parser("export", help="export a Hub id or a local save_pretrained folder",
                       description="Export SOURCE (a Hugging Face Hub id or a folder written by save_pretrained) "
                                   "to OUT/NAME. Nothing is written unless the TorchScript module reproduces "
                                   "transformers' output.")
    e.add_argument("source", metavar="SOURCE", help="Hub id (e.g. sentence-transformers/all-MiniLM-L6-v2) or local folder")
    e.add_argument("--task", required=True, choices=TASKS)
    e.add_argument("--name", required=True, help="model folder name under --out (letters, digits, . _ -)")
    e.add_argument("--out", default="models", type=Path, help="folder holding model folders (default: models)")
    e.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    e.add_argument("--quantize", choices=("int8",), help="int8: dynamic quantization of nn.Linear (CPU)")
    e.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device to trace and verify on")
    e.add_argument("--max-length", type=_positive_int, help="max sequence length (text tasks; default: the model's)")
    e.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    e.add_argument("--max-batch-size", type=_positive_int, default=32, help="largest batch the server may send (default 32)")
    e.add_argument("--pooling", choices=("mean", "cls"), help="embedding pooling (default: from modules.json, else mean)")
    e.add_argument("--normalize", type=_bool, metavar="true|false",
                   help="L2-normalize embeddings (default: from modules.json, else false)")
    e.add_argument("--tolerance", type=float,
                   help="override the verification bound (absolute for float32, relative factor otherwise)")
    e.add_argument("--no-past", dest="past", action="store_false",
                   help="text-generation: do not export the incremental-decoding module")
    e.add_argument("--format", default="torchscript", choices=("torchscript", "pt2"),
                   help="torchscript (model.pt, the default) or pt2 (torch.export + AOTInductor: model.pt2)")
    e.add_argument("--version", dest="model_version", type=_positive_int, metavar="N",
                   help="write a numbered version folder OUT/NAME/N (the server's version policy picks what it serves)")
    e.add_argument("--force", action="store_true", help="replace OUT/NAME (or OUT/NAME/N) if it exists")

    v = sub.add_parser("verify", help="re-check exported folders against their sources",
                       description="Re-check each FOLDER against the source recorded in its manifest: file hashes, "
                                   "tokenizer / image preprocessing and TorchScript vs transformers eager. "
                                   "Exit status 1 if any folder fails.")
    v.add_argument("folders", type=Path, nargs="+", metavar="FOLDER", help="exported model folder(s), e.g. models/NAME")
    v.add_argument("--tolerance", type=float, help="override the verification bound")

    d = sub.add_parser("demo", help="export one demo model per task: tiny random-init ones (offline) or pretrained ones")
    d.add_argument("--out", default="models", type=Path, help="folder holding model folders (default: models)")
    d.add_argument("--force", action="store_true", help="re-export demo models that already exist")
    d.add_argument("--weights", default="random", choices=("random", "pretrained", "auto", "none"),
                   help="random: tiny random-init checkpoints built here (default); pretrained: real ones from the "
                        "Hub; auto: pretrained when the Hub answers (DEMO_MODELS and HF_HUB_OFFLINE decide first)")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.command == "export":
        from .export import ExportRequest, export

        request = ExportRequest(
            source=args.source, task=args.task, name=args.name, out=args.out, dtype=args.dtype,
            quantize=args.quantize, device=args.device, max_length=args.max_length, revision=args.revision,
            max_batch_size=args.max_batch_size, pooling=args.pooling, normalize=args.normalize,
            tolerance=args.tolerance, force=args.force, past=args.past, format=args.format, version=args.model_version,
        )
        export(request)
        print(f"wrote {args.out / args.name}" + (f"/{args.model_version}" if args.model_version else ""))
        return 0
    if args.command == "verify":
        from .export import verify_folder

        failed = 0
        for folder in args.folders:
            try:
                verify_folder(folder, tolerance=args.tolerance)
                print(f"verify OK: {folder}")
            except ExportError as e:
                failed += 1
                print(f"error: {folder}: {e}", file=sys.stderr)
        return EXIT_ERROR if failed else 0
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.out, force=args.force, weights=args.weights)
        return 0
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or an unforeseen model quirk: keep the message, hide the traceback
        if args.debug:
            traceback.print_exc()
        else:
            print(f"error: unexpected {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR
