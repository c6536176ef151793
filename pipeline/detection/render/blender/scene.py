"""Build a scene spec (see pipeline.detection.render.sampling) into Blender objects."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from mathutils import Vector

BODY, HEAD = 128, 255  # green channel of the ID pass: which part of a person a pixel shows


def reset(threads: int, device: str) -> None:
    """Start from an empty factory scene; user scripts never auto-run."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.use_scripts_auto_execute = False
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.render.threads_mode = "FIXED"
    scene.render.threads = threads
    scene.cycles.device = "CPU"
    if device in ("auto", "gpu"):
        prefs = bpy.context.preferences.addons["cycles"].preferences
        for kind in ("OPTIX", "CUDA", "HIP", "METAL", "ONEAPI"):
            try:
                prefs.compute_device_type = kind
                prefs.get_devices()
            except TypeError:
                continue
            gpus = [d for d in prefs.devices if d.type != "CPU"]
            if gpus:
                for d in prefs.devices:
                    d.use = d.type != "CPU"
                scene.cycles.device = "GPU"
                print(f"cycles device: {kind} ({', '.join(d.name for d in gpus)})", file=sys.stderr, flush=True)
                break
        if device == "gpu" and scene.cycles.device != "GPU":  # asked for by name: never a silent CPU render
            raise RuntimeError("render.device is 'gpu', but Cycles found no OptiX/CUDA/HIP/Metal/oneAPI device")


def _unit_meshes() -> dict[str, bpy.types.Mesh]:
    bpy.ops.mesh.primitive_uv_sphere_add(segments=20, ring_count=10, radius=1.0)
    sphere = bpy.context.object
    for poly in sphere.data.polygons:
        poly.use_smooth = True
    bpy.ops.mesh.primitive_cube_add(size=2.0)
    cube = bpy.context.object
    meshes = {"sphere": sphere.data, "cube": cube.data}
    for ob in (sphere, cube):
        bpy.data.objects.remove(ob)
    return meshes


def _material(name: str, colour, roughness: float = 0.6) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    return mat


def _id_material(r: int, g: int, b: int, cache: dict) -> bpy.types.Material:
    """Flat emission whose 8-bit output is exactly (r, g, b) under the Raw view transform."""
    key = (r, g, b)
    if key not in cache:
        mat = bpy.data.materials.new(f"id_{r}_{g}_{b}")
        mat.use_nodes = True
        nodes = mat.node_tree.nodes
        nodes.clear()
        em = nodes.new("ShaderNodeEmission")
        em.inputs["Color"].default_value = (r / 255.0, g / 255.0, b / 255.0, 1.0)
        out = nodes.new("ShaderNodeOutputMaterial")
        mat.node_tree.links.new(em.outputs["Emission"], out.inputs["Surface"])
        cache[key] = mat
    return cache[key]


def set_material(ob: bpy.types.Object, mat: bpy.types.Material) -> None:
    """Give ``ob`` (and only ``ob``, not other users of its mesh) the single material ``mat``."""
    if not ob.material_slots:
        ob.data.materials.append(None)
    for slot in ob.material_slots:
        slot.link = "OBJECT"
        slot.material = mat


def _object(name: str, mesh, mat, loc, scale, rot=(0.0, 0.0, 0.0), parent=None) -> bpy.types.Object:
    ob = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(ob)
    set_material(ob, mat)
    ob.location, ob.scale, ob.rotation_euler = loc, scale, rot
    ob.parent = parent
    return ob


def _segment(name, mesh, mat, a, b, r, parent) -> bpy.types.Object:
    a, b = Vector(a), Vector(b)
    axis = b - a
    rot = Vector((0, 0, 1)).rotation_difference(axis.normalized()).to_euler() if axis.length > 1e-9 else (0, 0, 0)
    return _object(name, mesh, mat, (a + b) / 2, (r, r, axis.length / 2 + r), rot, parent)


def _camera(cam: dict[str, Any]) -> None:
    scene = bpy.context.scene
    data = bpy.data.cameras.new("fisheye")
    data.type = "PANO"
    data.panorama_type = "FISHEYE_EQUISOLID"
    data.fisheye_lens = cam["lens_mm"]
    data.fisheye_fov = math.radians(cam["fov_deg"])
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = cam["sensor_mm"]
    ob = bpy.data.objects.new("camera", data)
    scene.collection.objects.link(ob)
    ob.location = cam["position"]
    scene.camera = ob
    scene.render.resolution_x, scene.render.resolution_y = cam["width"], cam["height"]
    scene.render.resolution_percentage = 100


def _room(spec: dict[str, Any], meshes, plate: bool) -> list[bpy.types.Object]:
    w, d = spec["room"]
    floor = _object("floor", meshes["cube"], _material("floor", spec["floor"], 0.8), (0, 0, -0.01),
                    (w / 2 + (3 if plate else 0), d / 2 + (3 if plate else 0), 0.01))
    if plate:
        floor.is_shadow_catcher = True
        return [floor]
    walls = [floor]
    wall_mat = _material("wall", spec["wall"], 0.9)
    for i, (x, y, sx, sy) in enumerate([(w / 2, 0, 0.05, d / 2), (-w / 2, 0, 0.05, d / 2),
                                        (0, d / 2, w / 2, 0.05), (0, -d / 2, w / 2, 0.05)]):
        walls.append(_object(f"wall{i}", meshes["cube"], wall_mat, (x, y, 1.4), (sx, sy, 1.4)))
    for i, desk in enumerate(spec["desks"]):
        mat = _material(f"desk{i}", desk["color"], 0.4)
        (cx, cy), (dw, dd), yaw = desk["center"], desk["size"], desk["yaw"]
        top = _object(f"desk{i}", meshes["cube"], mat, (cx, cy, 0.74), (dw / 2, dd / 2, 0.02), (0, 0, yaw))
        walls.append(top)
        c, s = math.cos(yaw), math.sin(yaw)
        for j, (sx, sy) in enumerate([(-1, -1), (1, -1), (1, 1), (-1, 1)]):
            lx, ly = sx * (dw / 2 - 0.06), sy * (dd / 2 - 0.06)
            loc = (cx + lx * c - ly * s, cy + lx * s + ly * c, 0.36)
            walls.append(_object(f"desk{i}_leg{j}", meshes["cube"], mat, loc, (0.03, 0.03, 0.36), (0, 0, yaw)))
    return walls


def _lights(spec: dict[str, Any]) -> None:
    scene = bpy.context.scene
    for i, li in enumerate(spec["lights"]):
        data = bpy.data.lights.new(f"light{i}", "AREA")
        data.size, data.energy, data.color = li["size"], li["energy"], li["color"]
        ob = bpy.data.objects.new(f"light{i}", data)
        scene.collection.objects.link(ob)
        ob.location = li["location"]
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = spec["world"]
    scene.world = world


def _person(p: dict[str, Any], meshes, mats_cache) -> tuple[bpy.types.Object, list[tuple[bpy.types.Object, bool]]]:
    root = bpy.data.objects.new(f"person{p['id']}", None)
    bpy.context.scene.collection.objects.link(root)
    x, y = p["position"]
    root.location, root.rotation_euler = (x, y, 0.0), (0, 0, p["yaw"])
    mats = {"skin": _material(f"skin{p['id']}", p["skin"], 0.5), "hair": _material(f"hair{p['id']}", p["hair"], 0.45),
            "shirt": _material(f"shirt{p['id']}", p["shirt"], 0.8),
            "trousers": _material(f"trousers{p['id']}", p["trousers"], 0.8),
            "shoes": _material(f"shoes{p['id']}", (0.03, 0.03, 0.03), 0.4)}
    parts = []
    for k, seg in enumerate(p["parts"]):
        ob = _segment(f"p{p['id']}_{k}", meshes["sphere"], mats[seg["mat"]], seg["a"], seg["b"], seg["r"], root)
        parts.append((ob, seg["head"]))
    if p["pose"] == "sitting":  # chair seat
        chair = _object(f"chair{p['id']}", meshes["cube"], _material(f"chair{p['id']}", (0.05, 0.05, 0.06), 0.5),
                        (0, -0.05, 0.42), (0.24, 0.24, 0.03), parent=root)
        parts.append((chair, None))
    return root, parts


class AssetError(ValueError):
    """A user asset that cannot become a person; the message names the file."""


def import_asset(path: str, p: dict[str, Any]) -> tuple[bpy.types.Object, list, dict[str, Any]]:
    """Import a user asset (.blend/.obj/.fbx), scale it to the person's height and place it."""
    before = set(bpy.data.objects)
    suffix = Path(path).suffix.lower()
    if suffix == ".blend":
        with bpy.data.libraries.load(path, link=False) as (src, dst):
            dst.objects = [n for n in src.objects]
        for ob in dst.objects:
            if ob is not None and ob.type == "MESH":
                bpy.context.scene.collection.objects.link(ob)
    elif suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=path)
    elif suffix == ".fbx":
        bpy.ops.import_scene.fbx(filepath=path)
    obs = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    if not obs:
        raise AssetError(f"{path}: the asset yields no mesh (not a {suffix} file Blender can read, or no geometry)")
    if not any(len(o.data.polygons) for o in obs):
        raise AssetError(f"{path}: the asset's meshes have no faces (nothing would render)")
    pts = np.array([tuple(o.matrix_world @ v.co) for o in obs for v in o.data.vertices])
    lo, hi = pts.min(0), pts.max(0)
    if not np.isfinite(pts).all() or hi[2] - lo[2] <= 1e-6:
        raise AssetError(f"{path}: the asset has no height (all vertices at one level, or not finite)")
    s = p["height"] / max(hi[2] - lo[2], 1e-6)
    root = bpy.data.objects.new(f"person{p['id']}", None)
    bpy.context.scene.collection.objects.link(root)
    for o in obs:
        if o.parent is None:
            o.parent = root
            o.location = Vector(o.location) - Vector(((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]))
    x, y = p["position"]
    root.location, root.rotation_euler, root.scale = (x, y, 0.0), (0, 0, p["yaw"]), (s, s, s)
    bpy.context.view_layer.update()
    world = np.array([tuple(o.matrix_world @ v.co) for o in obs for v in o.data.vertices])
    top = world[world[:, 2] >= world[:, 2].max() - 0.12 * p["height"]]
    centre = top.mean(0)
    radius = float(np.max(np.hypot(top[:, 0] - centre[0], top[:, 1] - centre[1])))
    return root, [(o, None) for o in obs], {"head": centre.tolist(), "head_r": radius}


def build(spec: dict[str, Any]) -> dict[str, Any]:
    """Create all objects of ``spec``; returns handles used by the render passes."""
    meshes = _unit_meshes()
    plate = bool(spec.get("background"))
    _camera(spec["camera"])
    statics = _room(spec, meshes, plate)
    _lights(spec)
    people, meta = [], {}
    prefs = bpy.context.preferences.edit
    prefs.keyframe_new_interpolation_type = "LINEAR"
    for p in spec["people"]:
        if p.get("asset"):
            root, parts, meta[p["id"]] = import_asset(p["asset"], p)
        else:
            root, parts = _person(p, meshes, None)
        bx, by = p["blur"]
        base = Vector(root.location)
        for frame, sgn in ((0, -1), (2, 1)):
            root.location = base + Vector((sgn * bx, sgn * by, 0))
            root.keyframe_insert("location", frame=frame)
        root.location = base
        people.append((p["id"], parts))
    bpy.context.scene.frame_set(1)
    return {"statics": statics, "people": people, "meta": meta}
