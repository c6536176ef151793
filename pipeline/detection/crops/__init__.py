"""Crops toward the fisheye centre: the geometry (no I/O), the dataset loops and the crop manifest."""
