"""The two reconstruction methods as the training engine sees them: each contributes its
network, its loss terms and its previews. Picked from a table by name."""

from recon_core.methods.base import Method
from recon_core.methods.implicit import ImplicitMethod
from recon_core.methods.pointcloud import PointCloudMethod

METHODS: dict[str, type[Method]] = {
    "pointcloud": PointCloudMethod,
    "implicit": ImplicitMethod,
}

__all__ = ["METHODS", "Method", "ImplicitMethod", "PointCloudMethod"]
