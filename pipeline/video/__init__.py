"""The video domain (issue 9)."""
