"""The sensor domain: accelerometer windows, 1D GANs, activity classification."""
