"""The equisolid fisheye projection that Cycles uses for PANO / FISHEYE_EQUISOLID.

Cycles maps a camera-space direction at angle theta from the optical axis to a sensor radius
r = 2 f sin(theta / 2) (mm), and the sensor width maps onto the image width. Annotations are
computed with this function, never with a pinhole model; a unit test checks it against a render.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fisheye:
    """A camera at ``position`` looking straight down (-Z); image right = +X, image up = +Y."""

    width: int
    height: int
    lens_mm: float
    sensor_mm: float
    fov_deg: float
    position: tuple[float, float, float]

    @property
    def px_per_mm(self) -> float:
        return self.width / self.sensor_mm

    @property
    def centre(self) -> np.ndarray:
        """Optical centre in pixel coordinates (pixel i spans [i, i+1))."""
        return np.array([self.width / 2.0, self.height / 2.0])

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N,3) world points -> (N,2) pixel coordinates (x right, y down), continuous."""
        d = np.atleast_2d(np.asarray(points, dtype=np.float64)) - np.asarray(self.position)
        horiz = np.hypot(d[:, 0], d[:, 1])
        theta = np.arctan2(horiz, -d[:, 2])
        r_px = 2.0 * self.lens_mm * np.sin(theta / 2.0) * self.px_per_mm
        with np.errstate(invalid="ignore", divide="ignore"):
            ux = np.where(horiz > 0, d[:, 0] / horiz, 0.0)
            uy = np.where(horiz > 0, d[:, 1] / horiz, 0.0)
        return np.stack([self.width / 2.0 + r_px * ux, self.height / 2.0 - r_px * uy], axis=1)

    def visible(self, points: np.ndarray) -> np.ndarray:
        """Whether each point lies inside the fisheye field of view and the image."""
        d = np.atleast_2d(points) - np.asarray(self.position)
        theta = np.degrees(np.arctan2(np.hypot(d[:, 0], d[:, 1]), -d[:, 2]))
        px = self.project(points)
        inside = (px[:, 0] >= 0) & (px[:, 0] < self.width) & (px[:, 1] >= 0) & (px[:, 1] < self.height)
        return inside & (theta <= self.fov_deg / 2.0)

    def radius_of_angle(self, theta_deg: float) -> float:
        """Image radius in px of a ray ``theta_deg`` off the optical axis."""
        return 2.0 * self.lens_mm * np.sin(np.radians(theta_deg) / 2.0) * self.px_per_mm
