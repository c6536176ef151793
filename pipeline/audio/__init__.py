"""The audio domain (issue 7)."""
