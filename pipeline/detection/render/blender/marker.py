"""Render a single bright marker through the fisheye camera (used to check the projection).

    python -m pipeline.detection.render.blender.marker CAMERA_JSON X Y Z OUT.png
"""

from __future__ import annotations

import json
import sys

import bpy

from pipeline.detection.render.blender import scene as bscene


def render_marker(camera: dict, point: tuple[float, float, float], out: str) -> None:
    bscene.reset(threads=2, device="cpu")
    bscene._camera(camera)
    meshes = bscene._unit_meshes()
    # Radius grows with distance so the marker spans a few pixels anywhere in the field of view.
    dist = sum((a - b) ** 2 for a, b in zip(point, camera["position"])) ** 0.5
    white = bscene._id_material(255, 255, 255, {})
    bscene._object("marker", meshes["sphere"], white, point, (0.012 * dist,) * 3)
    scene = bpy.context.scene
    scene.cycles.samples, scene.cycles.use_denoising = 16, False
    scene.view_settings.view_transform = "Raw"
    scene.render.dither_intensity = 0.0
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = out
    bpy.ops.render.render(write_still=True)


if __name__ == "__main__":
    cam, (x, y, z), path = json.loads(sys.argv[1]), map(float, sys.argv[2:5]), sys.argv[5]
    render_marker(cam, (x, y, z), path)
