import json

import numpy as np

from pipeline.detection.params import CameraParams, SceneParams
from pipeline.detection.render.sampling import PERSON_RADIUS, Desk, head_of, sample_scene

SCENE, CAM = SceneParams(), CameraParams()


def test_same_seed_and_index_same_spec():
    a = json.dumps(sample_scene(SCENE, CAM, 7, 12))
    assert a == json.dumps(sample_scene(SCENE, CAM, 7, 12))
    assert a != json.dumps(sample_scene(SCENE, CAM, 7, 13))
    assert a != json.dumps(sample_scene(SCENE, CAM, 7, 12, profile="demo_real"))


def test_counts_and_ranges_follow_params():
    for i in range(40):
        s = sample_scene(SCENE, CAM, 0, i)
        poses = [p["pose"] for p in s["people"]]
        assert poses.count("sitting") <= SCENE.sitting[1] and poses.count("standing") <= SCENE.standing[1]
        assert len(poses) >= 1
        for p in s["people"]:
            assert SCENE.melanin[0] <= p["melanin"] <= SCENE.melanin[1]
            assert all(0 <= c <= 1 for c in p["shirt"] + p["trousers"])


def test_placement_is_collision_free():
    for i in range(40):
        s = sample_scene(SCENE, CAM, 1, i)
        desks = [Desk(*d["center"], *d["size"], d["yaw"]) for d in s["desks"]]
        pos = [np.array(p["position"]) for p in s["people"]]
        for k, p in enumerate(s["people"]):
            assert abs(pos[k][0]) < SCENE.room_m[0] / 2 and abs(pos[k][1]) < SCENE.room_m[1] / 2
            if p["pose"] == "standing":
                assert all(d.distance(pos[k]) >= PERSON_RADIUS["standing"] - 1e-9 for d in desks)
            for j in range(k):
                assert np.linalg.norm(pos[k] - pos[j]) >= 0.6 - 1e-9


def test_sitting_people_face_their_desk_and_heads_are_lower():
    s = next(sample_scene(SCENE, CAM, 2, i) for i in range(50)
             if any(p["pose"] == "standing" for p in sample_scene(SCENE, CAM, 2, i)["people"]))
    for p in s["people"]:
        centre, r = head_of(p)
        assert 0.09 < r < 0.13
        assert (1.0 < centre[2] < 1.35) if p["pose"] == "sitting" else (1.45 < centre[2] < 1.9)
