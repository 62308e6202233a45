"""Write a checkpoint's backbone for another tool: torchvision, safetensors or detectron2.

    selfsup export runs/simclr/backbone.pt --to torchvision --output simclr_resnet50.pth
    selfsup export runs/moco/checkpoints/last.ckpt --to detectron2 --output moco_r50.pkl
    selfsup export moco_v2_800ep.pth.tar --backbone resnet50 --to safetensors --output moco.safetensors

Any file ``selfsup evaluate`` reads is accepted (a foreign one with ``--backbone`` and,
if needed, ``--prefix``); see :mod:`selfsup.export_formats` for what each format holds.
An existing output file is kept unless ``--overwrite`` is given.
"""

import argparse
import json
from pathlib import Path

from selfsup.checkpoints import load_backbone
from selfsup.errors import ConfigurationError
from selfsup.export_formats import FORMATS, write


def parser() -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(prog="selfsup export", description=__doc__.splitlines()[0])
    arguments.add_argument("checkpoint", help="backbone.pt, a Lightning checkpoint, or another project's file")
    arguments.add_argument("--to", required=True, choices=FORMATS, help="the format to write")
    arguments.add_argument("--output", required=True, help="the file to write")
    arguments.add_argument("--backbone", help="the architecture of a file that does not name it (e.g. resnet50)")
    arguments.add_argument("--backbone-kwargs", default="{}", help="its arguments as a JSON object")
    arguments.add_argument("--prefix", help="where in the file the backbone's tensors are, when several sets fit")
    arguments.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return arguments


def main(arguments: list[str]) -> None:
    """Write a checkpoint's backbone for torchvision, safetensors or detectron2."""
    options = parser().parse_args(arguments)
    output = Path(options.output)
    if output.is_dir():
        raise ConfigurationError(f"--output {output} is a directory; give the path of the file to write.")
    if output.exists() and not options.overwrite:
        raise ConfigurationError(f"--output {output} exists; give another path, or --overwrite to replace it.")
    try:
        kwargs = json.loads(options.backbone_kwargs)
    except json.JSONDecodeError as error:
        message = f"--backbone-kwargs must be a JSON object, got {options.backbone_kwargs!r}: {error}"
        raise ConfigurationError(message) from None
    if not isinstance(kwargs, dict):
        raise ConfigurationError(f"--backbone-kwargs must be a JSON object, got {options.backbone_kwargs!r}.")
    backbone, metadata = load_backbone(options.checkpoint, options.backbone, kwargs or None, options.prefix)
    if "source" in metadata:
        print(f"{options.checkpoint}: {metadata['source']}")
    recorded = {key: metadata[key] for key in ("image_size", "mean", "std") if key in metadata}
    write(
        backbone.eval(),
        output,
        options.to,
        {"backbone": metadata["backbone"], "backbone_kwargs": metadata["backbone_kwargs"], "metadata": recorded},
    )
    print(f"wrote {output} ({options.to}, {len(backbone.state_dict())} tensors of {metadata['backbone']})")
