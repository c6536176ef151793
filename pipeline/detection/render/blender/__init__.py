"""The only package that imports bpy. Run through ``python -m pipeline.detection.render.blender.worker``."""
