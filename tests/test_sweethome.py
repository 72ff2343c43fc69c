"""The Sweet Home 3D source: catalog parsing, category mapping, frame conversion."""

import argparse
import os
import zipfile

import numpy as np
import pytest
import trimesh

from training.data.pipeline import load_shape
from training.data.prepare import source_specs
from training.data.procedural import make_shape
from training.data.sources import sweethome3d as sh3d

# Sweet Home 3D (Y-up, front +Z) -> ours is (x, y, z) -> (x, -z, y); for row vectors,
# `points @ FROM_SH3D` applies its inverse, taking our frame to Sweet Home 3D's.
FROM_SH3D = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def test_java_properties_parsing():
    text = (
        "# comment\n! other comment\nname#1=Arm\\\n    chair\ncategory#1 : Living room\n"
        "creator#1=Andr\\u00e9 K\u00e4tor\nmodel#1=/a/b.obj\nempty#1=\nkey\\=with=value\n"
    )
    props = sh3d.parse_properties(text)
    assert props["name#1"] == "Armchair"
    assert props["category#1"] == "Living room"
    assert props["creator#1"] == "André Kätor"
    assert props["model#1"] == "/a/b.obj"
    assert props["empty#1"] == ""
    assert props["key=with"] == "value"


@pytest.mark.parametrize(
    "name,catalog,expected",
    [
        ("Armchair", "Living room", "chair"),
        ("Bedside table", "Bedroom", "cabinet"),
        ("Corner sofa", "Living room", "sofa"),
        ("Desk lamp", "Office", "lamp"),
        ("Coffee table", "Living room", "table"),
        ("Bunk bed", "Bedroom", "bed"),
        ("Wardrobe", "Bedroom", "cabinet"),
        ("Seat Leon", "Vehicles", "car"),
        ("Female", "Characters", "person"),
        ("Rubik's cube", "Miscellaneous", "other"),
        ("Chandelier lamp", "Lights", "lamp"),
        ("Garage door", "Doors and windows", "door_window"),
    ],
)
def test_category_mapping(name, catalog, expected):
    assert sh3d.map_category(name, catalog, False) == expected


def _write_catalog(folder, models):
    """A .sh3f zip holding OBJ models and a catalog describing them."""
    lines = ["id=Test", "name=Test catalog", "license=Creative Commons Attribution 3.0 license"]
    with zipfile.ZipFile(folder / "Test.sh3f", "w") as zf:
        for n, (name, vertices, faces, rotation, size) in enumerate(models, start=1):
            obj = trimesh.Trimesh(vertices, faces, process=False).export(file_type="obj")
            zf.writestr(f"test/m{n}/m{n}.obj", obj)
            lines += [
                f"id#{n}=Test#m{n}",
                f"name#{n}={name}",
                f"category#{n}=Living room",
                f"model#{n}=/test/m{n}/m{n}.obj",
                f"width#{n}={size[0]}",
                f"depth#{n}={size[1]}",
                f"height#{n}={size[2]}",
                f"creator#{n}=Someone",
            ]
            if rotation is not None:
                lines.append(f"modelRotation#{n}=" + " ".join(str(v) for v in np.ravel(rotation)))
        zf.writestr("PluginFurnitureCatalog.properties", "\n".join(lines).encode("latin-1"))


def _back_is_at_plus_y(vertices):
    top = vertices[vertices[:, 2] > vertices[:, 2].max() - 0.25]
    return top[:, 1].mean() > 0.15


def test_synthetic_catalog_lands_in_our_frame(tmp_path):
    chair = make_shape("chair", 7)  # ours: back at +Y, seat up
    assert _back_is_at_plus_y(chair.vertices)
    y_up = chair.vertices @ FROM_SH3D
    # a model authored Z-up, which the catalog rotates upright: R maps (x, y, z) -> (x, z, -y)
    rot_x = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    z_up = y_up @ rot_x  # so that rot_x @ z_up = y_up
    extent = np.ptp(chair.vertices, axis=0) * 100  # width, depth, height in cm
    # a catalog that asks for a wider chair than the model: the stretch applies
    wide = (extent[0] * 2, extent[1], extent[2])
    source = tmp_path / "source"
    source.mkdir()
    _write_catalog(
        source,
        [
            ("Chair", y_up, chair.faces, None, extent),
            ("Armchair", z_up, chair.faces, rot_x, extent),
            ("Dining chair", y_up, chair.faces, None, wide),
        ],
    )
    cache = tmp_path / "cache"
    specs = source_specs(
        argparse.Namespace(
            source="sweethome3d", path=str(source), cache=str(cache), categories=None
        )
    )
    assert [s.category for s in specs] == ["chair"] * 3
    assert specs[0].meta["licence"] == "CC-BY-3.0" and specs[0].meta["author"] == "Someone"
    plain, rotated, stretched = (load_shape(s) for s in specs)
    np.testing.assert_allclose(plain.vertices, chair.vertices, atol=1e-5)
    np.testing.assert_allclose(rotated.vertices, chair.vertices, atol=1e-5)
    ratio = np.ptp(stretched.vertices, 0) / np.ptp(stretched.vertices, 0).max()
    np.testing.assert_allclose(ratio, np.array(wide) / max(wide), atol=1e-4)


@pytest.fixture(scope="module")
def real_catalogs():
    cache = sh3d.DEFAULT_CACHE
    try:
        deb = sh3d.fetch_package(cache)
        return sh3d.extract_catalogs(deb.parent, cache, only=["BlendSwap-CC-0", "Scopia"])
    except RuntimeError as exc:
        if os.environ.get("RECON3D_REQUIRE_SWEETHOME3D"):
            raise
        pytest.skip(f"Sweet Home 3D package not available: {exc}")


def test_real_sweet_home_chairs_face_front_with_backs_at_plus_y(real_catalogs):
    entries = {e.id: e for e in sh3d.read_catalogs(real_catalogs)}
    # a known chair, and chairs whose catalog rotations turn them (Y axis and Z-up models)
    names = [
        "Blend Swap CC-0#armchair",
        "Scopia#chair",
        "Scopia#kids_desk_chair",
        "Scopia#armchair1",
        "Scopia#silla_teca",
    ]
    for name in names:
        entry = entries[f"sweethome3d/{name}"]
        assert entry.category == "chair"
        shape = load_shape(sh3d.entry_spec(entry, real_catalogs))
        v = shape.vertices
        assert _back_is_at_plus_y(v), name
        # upright and proportioned as the catalog says: width x depth x height = X x Y x Z
        extent = np.ptp(v, axis=0)
        width, depth, height = entry.size_cm
        np.testing.assert_allclose(
            extent / extent.max(),
            np.array([width, depth, height]) / max(width, depth, height),
            atol=0.02,
        )
        assert np.isclose(v[:, 2].max() - v[:, 2].min(), height / max(entry.size_cm), atol=0.02)
