"""Numpy-only scene sampling: (params, seed, image index) -> JSON-serialisable scene spec.

The spec fully determines the render: the Blender side only turns primitives into objects.
Every image draws from its own generator seeded by (seed, index), so the spec of image k does
not depend on how images are split across shards. Ranges follow seed Tables 7.1/7.2.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.detection.params import CameraParams, SceneParams

# A "reality profile" fixes palettes and lighting; ``demo_real`` is the stand-in real domain.
PROFILES: dict[str, dict[str, Any]] = {
    "synthetic": {
        "floor": [(0.42, 0.44, 0.47), (0.30, 0.34, 0.42), (0.55, 0.52, 0.48)],
        "wall": [(0.85, 0.85, 0.83), (0.78, 0.80, 0.84)],
        "desk": [(0.85, 0.85, 0.85), (0.62, 0.48, 0.32), (0.35, 0.35, 0.38)],
        "kelvin": (2700.0, 6500.0),  # warm to daylight: randomised wider than any one building
        "light_w": (30.0, 110.0),
        "hair": [(0.02, 0.015, 0.01), (0.15, 0.08, 0.03), (0.45, 0.30, 0.12), (0.6, 0.5, 0.3)],
        "value_shift": 0.0,
        "world": 0.08,
    },
    "demo_real": {
        "floor": [(0.36, 0.25, 0.16), (0.50, 0.44, 0.36), (0.22, 0.24, 0.22)],
        "wall": [(0.80, 0.74, 0.64), (0.70, 0.70, 0.66)],
        "desk": [(0.20, 0.20, 0.22), (0.75, 0.70, 0.60)],
        "kelvin": (2700.0, 3600.0),
        "light_w": (30.0, 80.0),
        "hair": [(0.03, 0.02, 0.015), (0.25, 0.12, 0.05), (0.08, 0.06, 0.05)],
        "value_shift": -0.1,
        "world": 0.05,
    },
}

PERSON_RADIUS = {"standing": 0.32, "sitting": 0.45}
HEAD_RADIUS = 0.105


@dataclass(frozen=True)
class Desk:
    cx: float
    cy: float
    w: float
    d: float
    yaw: float

    def corners(self) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [self.w / 2, self.d / 2]
        return local @ np.array([[c, s], [-s, c]]) + [self.cx, self.cy]

    def distance(self, p: np.ndarray) -> float:
        """Distance from point p to this (rotated) rectangle; 0 inside."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        q = np.array([[c, s], [-s, c]]) @ (np.asarray(p) - [self.cx, self.cy])
        dx, dy = max(abs(q[0]) - self.w / 2, 0.0), max(abs(q[1]) - self.d / 2, 0.0)
        return math.hypot(dx, dy)


def kelvin_to_rgb(k: float) -> tuple[float, float, float]:
    """Approximate black-body colour (Tanner Helland's fit), normalised to max 1."""
    t = k / 100.0
    r = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    g = 99.47 * math.log(t) - 161.12 if t <= 66 else 288.12 * (t - 60) ** -0.0755
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.52 * math.log(t - 10) - 305.04)
    rgb = np.clip([r, g, b], 0, 255) / 255.0
    return tuple(float(v) for v in rgb / rgb.max())


def skin_colour(melanin: float) -> tuple[float, float, float]:
    """Map a melanin value in [0,1] to a linear skin albedo (light -> dark)."""
    light, dark = np.array([0.80, 0.57, 0.45]), np.array([0.12, 0.06, 0.035])
    return tuple(float(v) for v in light * (1 - melanin) + dark * melanin)


def fabric_colour(rng: np.random.Generator, p: SceneParams, shift: float) -> tuple[float, float, float]:
    """Hue U(0,1), saturation |N(0, sd)|, value N(mean, sd) (seed Table 7.1), clipped to [0,1]."""
    h = rng.uniform()
    s = float(np.clip(abs(rng.normal(0.0, p.saturation_std)), 0, 1))
    v = float(np.clip(rng.normal(p.value_mean + shift, p.value_std), 0.03, 1))
    return tuple(float(c) ** 2.2 for c in colorsys.hsv_to_rgb(h, s, v))  # sRGB -> linear albedo


def _seg(a, b, r: float, mat: str, head: bool = False) -> dict[str, Any]:
    return {"a": [float(x) for x in a], "b": [float(x) for x in b], "r": float(r), "mat": mat, "head": head}


def body_parts(pose: str, height: float, rng: np.random.Generator, hair_style: int) -> list[dict[str, Any]]:
    """An articulated human as capsule-like segments in its local frame (facing +Y, feet at z=0)."""
    s = height / 1.75
    parts: list[dict[str, Any]] = []
    if pose == "standing":
        hip_z, torso = 0.92 * s, (0.95 * s, 1.45 * s)
        stride = rng.uniform(-0.15, 0.15) * s
        for side, sgn in ((-1, 1), (1, -1)):
            hip, knee = (side * 0.09 * s, 0, hip_z), (side * 0.09 * s, sgn * stride / 2, 0.5 * s)
            ankle = (side * 0.09 * s, sgn * stride, 0.08 * s)
            parts += [_seg(hip, knee, 0.075 * s, "trousers"), _seg(knee, ankle, 0.06 * s, "trousers")]
            parts.append(_seg(ankle, (ankle[0], ankle[1] + 0.14 * s, 0.04 * s), 0.045 * s, "shoes"))
    else:
        hip_z, torso = 0.5 * s, (0.52 * s, 1.0 * s)
        for side in (-1, 1):
            hip, knee = (side * 0.1 * s, 0, hip_z), (side * 0.11 * s, 0.45 * s, 0.52 * s)
            ankle = (side * 0.11 * s, 0.5 * s, 0.08 * s)
            parts += [_seg(hip, knee, 0.08 * s, "trousers"), _seg(knee, ankle, 0.06 * s, "trousers")]
            parts.append(_seg(ankle, (ankle[0], ankle[1] + 0.14 * s, 0.04 * s), 0.045 * s, "shoes"))
    parts.append(_seg((0, 0, torso[0]), (0, 0, torso[1]), 0.17 * s, "shirt"))
    shoulder_z = torso[1] - 0.03 * s
    for side in (-1, 1):
        sh = np.array([side * 0.21 * s, 0, shoulder_z])
        if pose == "standing":
            swing = rng.uniform(-0.5, 0.5)
            el = sh + np.array([side * 0.03, math.sin(swing) * 0.3, -math.cos(swing) * 0.3]) * s
            wr = el + np.array([0, math.sin(swing * 1.3) * 0.27, -math.cos(swing * 1.3) * 0.27]) * s
        else:  # forearms forward onto the desk
            el = sh + np.array([side * 0.02, 0.08, -0.27]) * s
            wr = el + np.array([-side * 0.06 * rng.uniform(0, 1), 0.28, 0.03]) * s
        parts += [_seg(sh, el, 0.05 * s, "shirt"), _seg(el, wr, 0.04 * s, "skin")]
        parts.append(_seg(wr, wr + (wr - el) * 0.25, 0.035 * s, "skin"))
    head_c = np.array([0, 0.01 * s, torso[1] + 0.17 * s])
    parts.append(_seg(head_c - [0, 0, 0.07 * s], head_c - [0, 0, 0.14 * s], 0.05 * s, "skin"))  # neck
    parts.append(_seg(head_c, head_c, HEAD_RADIUS * s, "skin", head=True))
    hair_top = head_c + [0, -0.012 * s, 0.025 * s]
    parts.append(_seg(hair_top, hair_top, HEAD_RADIUS * s * 1.03, "hair", head=True))
    if hair_style == 1:  # long hair down the back
        parts.append(_seg(head_c + [0, -0.05 * s, 0], head_c + [0, -0.08 * s, -0.22 * s], 0.08 * s, "hair", True))
    return parts


def _free(p: np.ndarray, r: float, desks: list[Desk], placed: list[tuple[np.ndarray, float]], room) -> bool:
    if abs(p[0]) > room[0] / 2 - r or abs(p[1]) > room[1] / 2 - r:
        return False
    if any(d.distance(p) < r for d in desks):
        return False
    return all(np.hypot(*(p - q)) >= r + rq for q, rq in placed)


def _place_desks(rng: np.random.Generator, p: SceneParams, n: int) -> list[Desk]:
    desks: list[Desk] = []
    for _ in range(200):
        if len(desks) == n:
            break
        w, d = rng.uniform(1.2, 1.8), rng.uniform(0.7, 0.9)
        yaw = float(rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.05))
        c = rng.uniform(-0.5, 0.5, 2) * (np.array(p.room_m) - 2.2)
        cand = Desk(float(c[0]), float(c[1]), w, d, yaw)
        if all(np.hypot(cand.cx - o.cx, cand.cy - o.cy) > 0.5 * (max(w, d) + max(o.w, o.d)) + 1.0 for o in desks):
            desks.append(cand)
    return desks


def _place_people(rng, p: SceneParams, desks: list[Desk], n_sit: int, n_stand: int) -> list[dict[str, Any]]:
    placed: list[tuple[np.ndarray, float]] = []
    out: list[dict[str, Any]] = []
    for pose, count in (("sitting", n_sit), ("standing", n_stand)):
        r = PERSON_RADIUS[pose]
        for _ in range(count):
            for _try in range(100):
                if pose == "sitting" and desks:
                    desk = desks[rng.integers(len(desks))]
                    side = rng.choice([-1.0, 1.0])
                    along = rng.uniform(-0.35, 0.35) * desk.w
                    c, s = math.cos(desk.yaw), math.sin(desk.yaw)
                    # Chair behind the long edge; the person faces the desk with legs under it.
                    local = np.array([along, side * (desk.d / 2 + 0.18)])
                    pos = np.array([desk.cx, desk.cy]) + [local[0] * c - local[1] * s, local[0] * s + local[1] * c]
                    yaw = desk.yaw + (math.pi if side > 0 else 0.0)
                    ok = _free(pos, 0.3, [], placed, p.room_m) and all(
                        d.distance(pos) >= 0.05 for d in desks)
                else:
                    pos = rng.uniform(-0.5, 0.5, 2) * np.array(p.room_m)
                    yaw = rng.uniform(0, 2 * math.pi)
                    ok = _free(pos, r, desks, placed, p.room_m)
                if ok:
                    placed.append((pos, r))
                    out.append({"pose": pose, "position": [float(pos[0]), float(pos[1])], "yaw": float(yaw)})
                    break
    return out


def sample_scene(scene: SceneParams, camera: CameraParams, seed: int, index: int, profile: str = "synthetic",
                 samples: int = 16, denoise: bool = True, background: str | None = None,
                 assets: list[str] | None = None) -> dict[str, Any]:
    """Sample the scene spec of image ``index``; identical (seed, index, params) give identical specs."""
    prof = PROFILES[profile]
    rng = np.random.default_rng([seed, index, 0 if profile == "synthetic" else 1])
    pick = lambda seq: tuple(seq[rng.integers(len(seq))])  # noqa: E731
    desks = [] if background else _place_desks(rng, scene, int(rng.integers(scene.desks[0], scene.desks[1] + 1)))
    n_sit = int(rng.integers(scene.sitting[0], scene.sitting[1] + 1))
    n_stand = int(rng.integers(scene.standing[0], scene.standing[1] + 1))
    people = _place_people(rng, scene, desks, n_sit, n_stand)
    for i, person in enumerate(people, start=1):
        height = float(np.clip(rng.normal(1.74, 0.08), 1.55, 1.95))
        melanin = float(rng.uniform(*scene.melanin))
        person.update(
            id=i, height=height, melanin=melanin, skin=skin_colour(melanin), hair=pick(prof["hair"]),
            shirt=fabric_colour(rng, scene, prof["value_shift"]),
            trousers=fabric_colour(rng, scene, prof["value_shift"]),
            blur=[float(v) for v in rng.normal(0, scene.motion_blur_m, 2)],
            asset=assets[int(rng.integers(len(assets)))] if assets else None,
        )
        person["parts"] = body_parts(person["pose"], height, rng, int(rng.integers(2)))
    lights = []
    for _ in range(int(rng.integers(scene.lights[0], scene.lights[1] + 1))):
        xy = rng.uniform(-0.4, 0.4, 2) * np.array(scene.room_m)
        lights.append({"location": [float(xy[0]), float(xy[1]), 2.75], "size": float(rng.uniform(0.6, 1.5)),
                       "energy": float(rng.uniform(*prof["light_w"])),
                       "color": kelvin_to_rgb(float(rng.uniform(*prof["kelvin"])))})
    return {
        "index": index, "seed": seed, "profile": profile,
        "camera": {"width": camera.width, "height": camera.height, "lens_mm": camera.lens_mm,
                   "sensor_mm": camera.sensor_mm, "fov_deg": camera.fov_deg,
                   "position": [0.0, 0.0, camera.mount_m]},
        "render": {"samples": samples, "denoise": denoise, "cycles_seed": int(rng.integers(2**31 - 1))},
        "room": list(scene.room_m), "floor": pick(prof["floor"]), "wall": pick(prof["wall"]),
        "world": prof["world"], "background": background,
        "desks": [{"center": [d.cx, d.cy], "size": [d.w, d.d], "yaw": d.yaw, "color": pick(prof["desk"])}
                  for d in desks],
        "lights": lights, "people": people,
    }


def head_of(person: dict[str, Any]) -> tuple[np.ndarray, float]:
    """World-space head centre and radius of a procedural person."""
    head = next(p for p in person["parts"] if p["head"] and p["mat"] == "skin")
    c, s = math.cos(person["yaw"]), math.sin(person["yaw"])
    lx, ly, lz = head["a"]
    x, y = person["position"]
    return np.array([x + lx * c - ly * s, y + lx * s + ly * c, lz]), head["r"]
