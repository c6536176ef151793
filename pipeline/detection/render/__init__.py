"""Scene sampling (numpy) and rendering (Blender, fenced in render/blender/)."""
