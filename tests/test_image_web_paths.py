"""A web visitor names an image only by uploading it (or as a data: URI), never by a path on the server."""

from __future__ import annotations

import base64
import json
import os

import pytest
from helpers import NO_CAPS, lab_client, running_lab
from image_helpers import picture

from lab import image_input, params, presentation as pres
from lab.image_input import ImageInputError


def test_paths_outside_the_roots_are_refused_without_being_opened(tmp_path):
    root = tmp_path / "uploads"
    inside = picture(root / "abc" / "shot.png")
    outside = picture(tmp_path / "private" / "secret.png")
    image_input.check_confined({"input_reference": str(inside)}, [root])
    for sneaky in (str(outside), str(root / ".." / "private" / "secret.png"), "/etc/passwd", "~/.ssh/id_rsa"):
        with pytest.raises(ImageInputError, match="not accepted here"):
            image_input.check_confined({"input_reference": sneaky}, [root])
    link = root / "link.png"
    os.symlink(outside, link)
    with pytest.raises(ImageInputError):
        image_input.check_confined({"input_reference": str(link)}, [root])
    with pytest.raises(ImageInputError):
        image_input.check_confined({"input_reference": [str(inside), str(outside)]}, [root])
    image_input.check_confined({"input_reference": "data:image/png;base64,AAAA"}, [])
    image_input.check_confined({"prompt": "no image"}, [])


def test_the_raw_body_cannot_name_a_server_file(tmp_path):
    from lab.ui.single import resolve_form

    secret = picture(tmp_path / "server-only.png")
    values = {name: pres.NOT_SET for name in pres.FORM_FIELDS}
    values.update(raw_mode=True, image=None, raw_body=json.dumps(
        {"model": params.FAST_MODEL, "prompt": "p", "input_reference": str(secret)}))
    body, resolution, problem = resolve_form(values)
    assert body is None and resolution is None
    assert "file path on the server is not accepted" in problem


@pytest.fixture(scope="module")
def client(simulator, tmp_path_factory):
    env = {"LAB_SIM_TIME_SCALE": "0.02", **NO_CAPS}
    with running_lab(simulator.base_url, tmp_path_factory.mktemp("lab-data"), env) as (url, _services):
        c = lab_client(url, tmp_path_factory.mktemp("downloads"))
        yield c
        c.close()


def test_the_api_takes_a_data_uri_and_refuses_a_server_path(client, tmp_path):
    from gradio_client.exceptions import AppError

    image = picture(tmp_path / "still.png", size=(1280, 720))
    body = {"model": params.FAST_MODEL, "prompt": "p", "seconds": "4"}
    uri = "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    resolved = client.predict(json.dumps({**body, "input_reference": uri}), api_name="/resolve")
    assert resolved["ok"] and resolved["transport"] == "multipart" and resolved["image"]["width"] == 1280
    with pytest.raises(AppError, match="not accepted here"):
        client.predict(json.dumps({**body, "input_reference": str(image)}), api_name="/resolve")
    with pytest.raises(AppError, match="not accepted here"):
        client.predict(json.dumps({**body, "input_reference": str(image)}), api_name="/generate")


def test_the_api_generates_from_a_data_uri(client, tmp_path):
    image = picture(tmp_path / "still.png", size=(1280, 720))
    uri = "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    body = {"model": params.FAST_MODEL, "prompt": "p", "seconds": "4", "metadata": {"seed": 4}, "input_reference": uri}
    video, summary = client.predict(json.dumps(body), api_name="/generate")
    assert summary["status"] == "saved", summary
    from lab import frames

    info = frames.probe(video["video"] if isinstance(video, dict) else video)
    assert (info.width, info.height, round(info.duration)) == (1280, 720, 4)
