"""From numpy arrays to Blender data (the only place that builds geometry)."""

from __future__ import annotations

import bpy
import numpy as np

COLOUR_ATTRIBUTE = "Col"
MESH_MATERIAL = "Image to 3D vertex colour"
POINTS_MATERIAL = "Image to 3D point colour"
POINTS_NODES = "Image to 3D mesh to points"
NATIVE_POINTS = bpy.app.version >= (4, 5, 0)
"""Whether this Blender converts meshes to Point Cloud objects."""


def _colour_attribute(mesh, colours: np.ndarray | None) -> None:
    if colours is None or len(colours) != len(mesh.vertices):
        return
    attribute = mesh.color_attributes.new(COLOUR_ATTRIBUTE, "BYTE_COLOR", "POINT")
    rgba = np.ones((len(colours), 4), dtype=np.float32)
    rgba[:, :3] = np.asarray(colours, dtype=np.float32) / 255.0
    attribute.data.foreach_set("color_srgb", rgba.ravel())
    mesh.color_attributes.active_color = attribute
    mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index


def _material(name: str, attribute_node: str) -> bpy.types.Material:
    """A material whose base colour reads the colour attribute (created once per file)."""
    material = bpy.data.materials.get(name)
    if material is not None:
        return material
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    shader = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    if attribute_node == "vertex":
        source = nodes.new("ShaderNodeVertexColor")
        source.layer_name = COLOUR_ATTRIBUTE
        links.new(source.outputs["Color"], shader.inputs["Base Color"])
    else:
        source = nodes.new("ShaderNodeAttribute")
        source.attribute_name = COLOUR_ATTRIBUTE
        links.new(source.outputs["Color"], shader.inputs["Base Color"])
    source.location = (-300, 200)
    shader.inputs["Roughness"].default_value = 0.8
    return material


def new_mesh(
    name: str, vertices: np.ndarray, faces: np.ndarray | None, colours: np.ndarray | None = None
) -> bpy.types.Mesh:
    """A mesh datablock: triangles (F, 3), or vertices only when ``faces`` is None."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(vertices, dtype=np.float32).ravel())
    if faces is not None and len(faces):
        mesh.loops.add(faces.size)
        mesh.loops.foreach_set("vertex_index", np.ascontiguousarray(faces, dtype=np.int32).ravel())
        mesh.polygons.add(len(faces))
        mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    mesh.validate()
    _colour_attribute(mesh, colours)
    if faces is not None:
        mesh.materials.append(_material(MESH_MATERIAL, "vertex"))
    return mesh


def _link(obj, location, collection) -> bpy.types.Object:
    obj.location = location
    collection.objects.link(obj)
    for other in bpy.context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    return obj


def mesh_object(
    name: str,
    vertices: np.ndarray,
    faces: np.ndarray,
    location,
    collection,
    colours: np.ndarray | None = None,
) -> bpy.types.Object:
    """A new mesh object from vertices (V, 3), triangles (F, 3) and optional vertex colours
    (V, 3) uint8, linked into ``collection`` at ``location``, selected and active."""
    return _link(
        bpy.data.objects.new(name, new_mesh(name, vertices, faces, colours)), location, collection
    )


def _points_node_group() -> bpy.types.NodeTree:
    group = bpy.data.node_groups.get(POINTS_NODES)
    if group is not None:
        return group
    group = bpy.data.node_groups.new(POINTS_NODES, "GeometryNodeTree")
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    source, sink = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    to_points = nodes.new("GeometryNodeMeshToPoints")
    radius = nodes.new("GeometryNodeInputNamedAttribute")
    radius.data_type = "FLOAT"
    radius.inputs["Name"].default_value = "radius"
    material = nodes.new("GeometryNodeSetMaterial")
    material.inputs["Material"].default_value = _material(POINTS_MATERIAL, "attribute")
    links.new(source.outputs[0], to_points.inputs["Mesh"])
    links.new(radius.outputs["Attribute"], to_points.inputs["Radius"])
    links.new(to_points.outputs["Points"], material.inputs["Geometry"])
    links.new(material.outputs["Geometry"], sink.inputs[0])
    for k, node in enumerate((source, radius, to_points, material, sink)):
        node.location = (200 * k - 400, 0)
    return group


POINT_RADIUS = 0.004
"""Radius of each point of a point-cloud result (Blender units; the object spans about 1)."""


def new_points_mesh(name: str, points: np.ndarray, colours: np.ndarray | None = None):
    """A vertex-only mesh of ``points`` with colour and radius attributes."""
    mesh = new_mesh(name, points, None, colours)
    attribute = mesh.attributes.new("radius", "FLOAT", "POINT")
    attribute.data.foreach_set("value", np.full(len(points), POINT_RADIUS, dtype=np.float32))
    return mesh


def points_object(
    name: str,
    points: np.ndarray,
    location,
    collection,
    colours: np.ndarray | None = None,
) -> bpy.types.Object:
    """A point cloud as an editable vertex-only mesh with colour and radius attributes and
    a Geometry Nodes "Mesh to Points" modifier that draws it with its colours."""
    obj = bpy.data.objects.new(name, new_points_mesh(name, points, colours))
    modifier = obj.modifiers.new("Mesh to Points", "NODES")
    modifier.node_group = _points_node_group()
    return _link(obj, location, collection)


def make_native_points(context, obj) -> None:
    """Turn a points object from `points_object` into a Point Cloud object in place
    (Blender 4.5+): its points keep their colour and radius, and it takes the points
    material directly instead of through the Mesh to Points modifier."""
    mesh = obj.data
    obj.modifiers.clear()
    override = {"active_object": obj, "object": obj, "selected_objects": [obj]}
    with context.temp_override(selected_editable_objects=[obj], **override):
        bpy.ops.object.convert(target="POINTCLOUD")
    obj.data.materials.append(_material(POINTS_MATERIAL, "attribute"))
    if mesh.name in bpy.data.meshes and mesh.users == 0:
        bpy.data.meshes.remove(mesh)
