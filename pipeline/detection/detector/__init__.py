"""The SqueezeDet detector, its training sets and its training."""
