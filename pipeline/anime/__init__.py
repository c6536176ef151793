"""The anime domain (issue 8)."""
