"""The only package that imports bpy. Run through ``python -m pipeline.render.blender.worker``."""
