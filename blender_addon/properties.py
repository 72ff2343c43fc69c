"""The panel's settings: one PropertyGroup on the Scene."""

from __future__ import annotations

import bpy

from .models_index import describe, model_files
from .runner import preferences

BACKGROUND_ITEMS = [
    ("auto", "Auto", "The alpha channel when the picture has one, else the segmentation network"),
    ("alpha", "Alpha", "The picture's alpha channel only"),
    ("segment", "Segment", "Cut the object out of any background with the segmentation network"),
    ("plain", "Plain", "Estimate a plain or studio background from the picture's border"),
]
"""The Background choices (the same as recon3d reconstruct --background)."""

VIEW_ITEMS = [
    ("auto", "Auto", "Estimated from the picture (a quarter come out seen from behind)"),
    ("front", "Front", "From -Y, as Blender's Front view"),
    ("front-right", "Front Right", "Between the Front and Right views"),
    ("right", "Right", "From +X, as Blender's Right view"),
    ("back-right", "Back Right", "Between the Back and Right views"),
    ("back", "Back", "From +Y, as Blender's Back view"),
    ("back-left", "Back Left", "Between the Back and Left views"),
    ("left", "Left", "From -X, as Blender's Left view"),
    ("front-left", "Front Left", "Between the Front and Left views"),
]
"""Where the picture was taken from, named as `recon_core.colour.VIEW_NAMES` names them."""

_ITEMS_CACHE: list = []  # Blender needs the enum items kept alive while shown


def _model_items(self, context):
    prefs = preferences()
    user_dir = prefs.models_dir if prefs else ""
    items = [(str(p), p.stem, describe(p)) for p in model_files(user_dir)]
    if not items:
        items = [("", "No model found", "Put .safetensors models in the user models folder")]
    _ITEMS_CACHE[:] = items
    return _ITEMS_CACHE


def _load_thumbnail(self, context):
    """Keep the chosen picture loaded so the panel can show its preview."""
    path = bpy.path.abspath(self.image_path)
    name = "Image to 3D picture"
    old = bpy.data.images.get(name)
    if old is not None:
        bpy.data.images.remove(old)
    try:
        image = bpy.data.images.load(path, check_existing=False)
    except RuntimeError:
        return
    image.name = name
    image.preview_ensure()


class ExtractionSettings:
    """The settings that turn a cached encoding into geometry, declared once: the scene's
    settings and the Re-extract operator both take them (as glTF-Blender-IO shares its
    export settings through mixin classes)."""

    resolution: bpy.props.IntProperty(
        name="Resolution",
        default=128,
        min=16,
        max=512,
        description="Mesh extraction grid resolution",
    )
    iso: bpy.props.FloatProperty(
        name="Iso level",
        default=0.5,
        min=0.01,
        max=0.99,
        description=(
            "Occupancy probability of the surface (where nothing reaches it, the mesh is "
            "taken at half the highest occupancy, with a warning)"
        ),
    )
    face_budget: bpy.props.IntProperty(
        name="Face Budget",
        default=0,
        min=0,
        max=10_000_000,
        description="At most this many faces, by quadric decimation (0: no limit)",
    )
    symmetric: bpy.props.BoolProperty(
        name="Mirror Symmetric",
        default=False,
        description="Make the result mirror-symmetric across the object's left-right plane "
        "(most furniture is; an asymmetric object such as a corner sofa loses its asymmetry)",
    )
    view: bpy.props.EnumProperty(
        name="Taken From",
        default="auto",
        items=VIEW_ITEMS,
        description="Where the picture was taken from, roughly: the colours' camera is "
        "searched near it",
    )
    views_agree: bpy.props.BoolProperty(
        name="Views Must Agree",
        default=False,
        description="Point-cloud models: keep only the points inside every fixed view's "
        "silhouette (drops stray points; can thin out parts the network half-missed)",
    )


class RECON_Settings(bpy.types.PropertyGroup, ExtractionSettings):
    image_path: bpy.props.StringProperty(
        name="Image",
        description="Picture of one object on a transparent or plain background",
        subtype="FILE_PATH",
        default="",
        update=_load_thumbnail,
    )
    mask_path: bpy.props.StringProperty(
        name="Mask",
        description="Optional mask picture (white = object) overriding the Background choice",
        subtype="FILE_PATH",
        default="",
    )
    background: bpy.props.EnumProperty(
        name="Background",
        description="Where the object's mask comes from without a mask picture",
        items=BACKGROUND_ITEMS,
        default="auto",
    )
    mask_warning: bpy.props.StringProperty(
        name="Mask warning",
        description="Why the mask last shown may be wrong (empty when it looks right)",
        default="",
    )
    model: bpy.props.EnumProperty(
        name="Model", items=_model_items, description="Trained model to reconstruct with"
    )
    output: bpy.props.EnumProperty(
        name="Output",
        default="mesh",
        items=[
            ("mesh", "Mesh", "A closed mesh with colours from the picture"),
            ("points", "Point cloud", "Points drawn by a Mesh to Points modifier"),
            ("both", "Both", "A mesh and a point cloud"),
        ],
    )
    point_count: bpy.props.IntProperty(
        name="Points",
        default=20000,
        min=100,
        max=1_000_000,
        description="Point cloud size",
    )
    fit_silhouette: bpy.props.BoolProperty(
        name="Fit Silhouette",
        default=False,
        description="Implicit models, with a view set: fit the shape to the picture's outline "
        "(about 9 s more on a 2-core CPU)",
    )
    native_points: bpy.props.BoolProperty(
        name="Native Point Cloud",
        default=False,
        description="Blender 4.5+: make point clouds Point Cloud objects instead of vertex-only "
        "meshes drawn by a Mesh to Points modifier",
    )
    device: bpy.props.EnumProperty(
        name="Device",
        default="auto",
        items=[
            ("auto", "Auto", "CUDA, then MPS, then CPU"),
            ("cpu", "CPU", ""),
            ("cuda", "CUDA", ""),
            ("mps", "MPS", ""),
        ],
    )
    progress: bpy.props.FloatProperty(
        name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR"
    )
    status: bpy.props.StringProperty(name="Status", default="")
    cancel_requested: bpy.props.BoolProperty(default=False)
