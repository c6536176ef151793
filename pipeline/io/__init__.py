"""Data contract readers and writers: COCO manifests, crop manifests, images, atomic outputs."""
