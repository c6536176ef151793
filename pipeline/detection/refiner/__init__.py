"""Refiners: networks, loss terms, the CycleGAN/AGGAN families, training and applying them to crops."""
